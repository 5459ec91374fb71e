/** bench/peers' adapter for `wslab swarm --profile idle`: it holds for the window, then ends by itself. */
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { WSLAB } from '../../lab/processes.js';
import { stopGroup } from './process-groups.js';
import type { Peer, PeerSettings } from './peer.js';

export const swarmPeer = (settings: PeerSettings): Peer => ({
  name: 'swarm',
  version: () => { try { return (JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string }).version; } catch { return null; } },
  unavailable: () => (existsSync(WSLAB) ? null : `${WSLAB} is missing: run npx tsc -p . first`),
  prepare(dir, url, n, holdFor) {
    const summary = join(dir, 'summary.json');
    const flag = (name: string, v: number | string | undefined) => (v === undefined || v === '' ? [] : [`--${name}`, String(v)]);
    const s = settings.swarm;
    const args = [WSLAB, 'swarm', '--url', url, '--connections', String(n), ...flag('rate', s.rate), ...flag('max-pending', s.maxPending),
      '--hold', `${holdFor}s`, '--profile', 'idle', ...flag('workers', s.workers), ...flag('source-ips', settings.sourceIps.text), '--summary', summary];
    return {
      command: process.execPath, args, files: {},
      // --hold covers the window: it ends by itself and closes cleanly (1000); SIGINT only if it overstays.
      async stop(child) {
        if (child.exitCode === null && child.signalCode === null) await Promise.race([once(child, 'exit'), sleep(30_000)]);
        await stopGroup(child, 'SIGINT', 10_000);
      },
      selfReport(_out, stderr, exitCode) {
        let s: Record<string, any> | null = null;
        try { s = JSON.parse(readFileSync(summary, 'utf8')) as Record<string, any>; } catch { /* none */ }
        if (!s) return { exitCode, errors: { no_summary: 1 }, stderrTail: stderr.slice(-600) };
        const errors: Record<string, number> = {};
        for (const [k, v] of Object.entries(s.failed as Record<string, number>)) if (k !== 'total' && v) errors[`failed.${k}`] = v;
        for (const [k, v] of Object.entries((s.lost?.byCause ?? {}) as Record<string, number>)) if (v) errors[`lost.${k}`] = v;
        return {
          exitCode, errors, opened: s.opened, heldAtEnd: s.heldAtEnd, peakOpen: s.peakOpen, connectRatePerSec: s.connectRatePerSec,
          connectLatencyMs: s.connectLatencyMs, client: s.client, durationSec: s.durationSec, warnings: s.warnings,
        };
      },
    };
  },
});
