/** bench/peers' adapter for Artillery 2 (its ws engine, one long `think`), installed outside the project. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopGroup } from './process-groups.js';
import { findBin, type Peer, type PeerSettings } from './peer.js';

export const artilleryPeer = (settings: PeerSettings): Peer => ({
  name: 'artillery',
  version() {
    const bin = findBin(settings.artillery.bin);
    if (!bin) return null;
    // <prefix>/node_modules/.bin/artillery → <prefix>/node_modules/artillery/package.json
    for (const p of [join(bin, '..', '..', 'artillery', 'package.json'), join(bin, '..', '..', 'lib', 'node_modules', 'artillery', 'package.json')]) {
      try { return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version; } catch { /* next */ }
    }
    return 'unknown';
  },
  unavailable: () => (findBin(settings.artillery.bin) ? null
    : `no artillery binary at '${settings.artillery.bin}': install it outside the project (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix /tmp/peers artillery@2) and pass --artillery /tmp/peers/node_modules/.bin/artillery or ARTILLERY_BIN`),
  prepare(dir, url, n, holdFor) {
    // 0 (default) = every arrival scheduled within 1 s: Artillery opens as fast as its one event loop can (measured
    // here at 15,000: 2,518/s when asked for 15,000/s, 2,145/s when asked for 3,000/s). maxVusers: without it, 15,151
    // connections opened for arrivalCount 15,000.
    const rate = settings.artillery.rate === 0 ? n : Math.min(n, settings.artillery.rate);
    const duration = Math.max(1, Math.ceil(n / rate));
    const yml = [
      'config:',
      `  target: "${url}"`,
      '  phases:',
      `    - duration: ${duration}`,
      `      arrivalCount: ${n}`,
      `      maxVusers: ${n}`,
      'scenarios:',
      '  - engine: ws',
      '    flow:',
      `      - think: ${holdFor}`,
      '',
    ].join('\n');
    const script = join(dir, 'idle-hold.yml');
    return {
      command: findBin(settings.artillery.bin)!, args: ['run', script], env: { ARTILLERY_DISABLE_TELEMETRY: 'true' }, files: { [script]: yml },
      stop: (child) => stopGroup(child, 'SIGINT', 15_000),
      selfReport(stdout, stderr, exitCode) {
        // Periodic reports ("Metrics for period to: …", every 10 s) carry the counters of their period: sum them.
        // A summary report appears only when the run ends by itself; it is not used, to count nothing twice.
        const body = stdout.split(/^Summary report/m)[0];
        const errors: Record<string, number> = {};
        let created = 0, failed = 0, completed = 0;
        for (const m of body.matchAll(/^(errors\.[^:]+|vusers\.created|vusers\.failed|vusers\.completed):\s*\.*\s*(\d+)\s*$/gm)) {
          const v = Number(m[2]);
          if (m[1] === 'vusers.created') created += v;
          else if (m[1] === 'vusers.failed') failed += v;
          else if (m[1] === 'vusers.completed') completed += v;
          else errors[m[1]] = (errors[m[1]] ?? 0) + v;
        }
        if (failed) errors['vusers.failed'] = failed;
        return { exitCode, errors, vusersCreated: created, vusersCompleted: completed, arrivalsRequested: { count: n, overSec: duration }, stderrTail: stderr.trim() ? stderr.slice(-600) : undefined };
      },
    };
  },
});
