import { CLAIM_TEXT, type ClaimId } from '../claims.js';
import type { Scenario } from '../scenario.js';
import { blockingCall } from './blocking-call.js';
import { cpuBound } from './cpu-bound.js';
import { cpuFanout } from './cpu-fanout.js';
import { idleHold } from './idle-hold.js';
import { mixedSizes } from './mixed-sizes.js';
import { proxyDefenses } from './proxy-defenses.js';
import { reconnectStorm } from './reconnect-storm.js';
import { slowBackend } from './slow-backend.js';
import { slowClientDos } from './slow-client-dos.js';

/** Every scenario, in the order the lab runs them. A scenario joins the lab by one line here. */
export const SCENARIOS: ReadonlyMap<string, Scenario> = new Map(
  [idleHold, blockingCall, slowBackend, mixedSizes, cpuBound, cpuFanout, slowClientDos, reconnectStorm, proxyDefenses].map((s) => [s.id, s]),
);

/** The scenarios a lab runs when `--scenarios` names none: all but the opt-in ones (Scenario.optIn). */
export const DEFAULT_SCENARIOS: readonly string[] = [...SCENARIOS.values()].filter((s) => !s.optIn).map((s) => s.id);

/** The claims the default scenarios judge, in CLAIM_TEXT order: what the verdicts of a run without --scenarios cover. */
export const CLAIM_IDS: readonly ClaimId[] = (Object.keys(CLAIM_TEXT) as ClaimId[])
  .filter((id) => [...SCENARIOS.values()].some((s) => !s.optIn && s.claims.includes(id)));
