/**
 * `wslab swarm --web`: the coordinator's own figures, those of its progress line, once a second: open, connecting
 * and target connections, the open rate over the last second, the slowest worker's RTT p99, failures and losses by
 * cause, the workers' RSS. At the end, the summary table and the file it went to. Loaded only when `--web` is given.
 */
import type { SwarmLiveSink } from '../client/coordinator.js';
import type { SwarmOptions } from '../client/options.js';
import { LiveWeb } from './live.js';
import type { WebOptions } from './options.js';

const MiB = 1024 * 1024;
const SECTION = 'swarm';

export interface SwarmWeb extends SwarmLiveSink {
  /** Ends the page with the run's exit code. */
  close(code: number): Promise<void>;
}

export async function openSwarmWeb(wo: WebOptions, o: SwarmOptions): Promise<SwarmWeb> {
  const profiles = o.groups.map((g) => `${g.connections.toLocaleString('en-US')} ${g.profile}`).join(' + ');
  const title = `wslab swarm ${profiles} → ${o.targets.map((t) => t.url).join(', ')}`;
  const web = await LiveWeb.open(wo, title);
  web.publish({ type: 'hello', kind: 'swarm', title, startedAt: new Date().toISOString(), pid: process.pid });
  web.publish({
    type: 'section', id: SECTION, title: 'The swarm', xTitle: 'seconds since the start order', charts: [
      { key: 'connections', title: 'Connections', axis: 'connections', factor: 1 },
      { key: 'rate', title: 'Open rate (last second)', axis: 'opened per second', factor: 1 },
      { key: 'rtt', title: 'Round trip p99 (slowest worker)', axis: 'RTT p99 (ms)', factor: 1 },
      { key: 'errors', title: 'Failed and lost, by cause', axis: 'connections', factor: 1 },
      { key: 'rss', title: 'Swarm workers RSS', axis: 'RSS (MiB)', factor: 1 / MiB },
    ],
  });
  // a cause gets its line at its first count, and keeps it
  const seen = new Set<string>();
  let lines: string[] = [];
  let files: string[] = [];
  return {
    url: web.url,
    sample(l, failed, lost, rssBytes) {
      const errors: Record<string, number> = {};
      for (const [kind, counts] of [['failed', failed], ['lost', lost]] as const) {
        for (const [cause, n] of Object.entries(counts)) {
          const name = `${kind}: ${cause}`;
          if (n > 0) seen.add(name);
          if (seen.has(name)) errors[name] = n;
        }
      }
      web.publish({
        type: 'point', section: SECTION, t: +l.elapsedSec.toFixed(2), y: {
          connections: { open: l.open, connecting: l.connecting, target: l.target },
          rate: { opened: Math.round(l.ratePerSec) },
          rtt: { p99: l.rttP99Ms },
          errors,
          rss: { workers: rssBytes },
        },
      }, SECTION);
    },
    summary(table, file) {
      lines = table.trimEnd().split('\n');
      files = file ? [file] : [];
    },
    close: (code) => web.close({ type: 'end', status: `exit ${code}`, lines, files }),
  };
}
