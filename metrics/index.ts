import type { MetricSpec } from './spec.js';
import * as connections from './connections.js';
import * as messages from './messages.js';
import * as process from './process.js';
import * as proxy from './proxy.js';
import * as swarm from './swarm.js';
import * as target from './target.js';

export * from './spec.js';
export * from './connections.js';
export * from './messages.js';
export * from './process.js';
export * from './proxy.js';
export * from './swarm.js';
export * from './target.js';

const isSpec = (v: unknown): v is MetricSpec => typeof v === 'object' && v !== null && 'help' in v && 'type' in v;

/** Every metric of the contract, by name: what dashboards, rules and reports may use. */
export const CONTRACT: ReadonlyMap<string, MetricSpec> = new Map(
  [connections, messages, process, proxy, swarm, target].flatMap((m) => Object.values(m).filter(isSpec)).map((s) => [s.name, s]),
);
