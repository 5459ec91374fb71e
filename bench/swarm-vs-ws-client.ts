/**
 * How light is the swarm? Holds N idle connections against fresh uws server processes with (a) `wslab swarm`,
 * (b) a plain `ws` library client, (c) a careful `net.Socket` client on the swarm's codec and (d) `handle`, bare
 * libuv TCP handles that only upgrade (the floor the swarm is built on), one after the other
 * in one run, and prints JSON: client RSS per held connection (whole process tree, minus its RSS just before the
 * first connect), open rate, CPU seconds, and the ratios.
 *
 *   npm run bench -- swarm-vs-ws-client [--connections 15000] [--servers 1] [--design uws]
 *     [--source-ips 127.0.0.2-127.0.0.9] [--clients swarm,ws,net,handle] [--rate 20000]
 *
 * Measured from outside the client, the same way for all three: RSS and CPU come from /proc for the client's
 * process tree; "held" is the moment the servers' scraped `wslab_connections_open` reaches N; the open rate is N
 * over the time from the client's first connect attempt to that moment (polled every 50 ms, so it is a slight
 * under-estimate). The swarm's own summary figures are reported next to them.
 */
import { CONNECTIONS_OPEN } from '../metrics/index.js';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WORKER_EXEC_ARGV } from '../client/coordinator.js';
import { WSLAB, type ServerProcess } from '../lab/processes.js';
import { sumOf } from '../metrics/exposition.js';
import type { HoldClientOptions } from './clients/hold-client.js';
import { defineBench } from './harness/bench.js';
import { design, integer, names, sourceIps } from './harness/options.js';
import { startServer } from './harness/server.js';
import { clientScript, holdCost, start } from './harness/child.js';

const KINDS = ['swarm', 'ws', 'net', 'handle'] as const;
type Kind = (typeof KINDS)[number];

export const bench = defineBench({
  name: 'swarm-vs-ws-client',
  describe: 'wslab swarm vs a `ws` client vs a raw net.Socket client holding N idle connections',
  options: {
    connections: integer(15_000, 1, 1_000_000, 'idle connections each client holds'),
    servers: integer(1, 1, 64, 'fresh server processes, the connections spread over them'),
    design: design('uws', "the servers' design"),
    'source-ips': sourceIps('127.0.0.2-127.0.0.9', 'source addresses for every client, a range or comma list on loopback'),
    clients: names(KINDS.join(','), KINDS, 'the clients to compare, in order'),
    rate: integer(20_000, 1, 10_000_000, 'the swarm\'s --rate'),
    'max-pending': integer(1000, 1, 1_000_000, 'handshakes in flight, for every client'),
  },
  async run(o, report) {
    const loadBefore = loadavg()[0];
    const results: Record<string, Record<string, unknown>> = {};
    for (const kind of o.clients) results[kind] = await measure(kind, o);
    const ratio = (x: unknown, y: unknown): number | null => (typeof x === 'number' && typeof y === 'number' && y > 0 ? Math.round((x / y) * 100) / 100 : null);
    const sw = results.swarm;
    report.result({
      bench: 'swarm-vs-ws-client', connections: o.connections, servers: o.servers, sourceIps: o['source-ips'].text, loadavgBefore: loadBefore, loadavgAfter: loadavg()[0],
      node: process.version, results,
      ratios: sw ? Object.fromEntries(Object.keys(results).filter((k) => k !== 'swarm').map((k) => [k, {
        bytesPerConnection: ratio(results[k].bytesPerConnection, sw.bytesPerConnection),
        swarmOpenRateTimes: ratio(sw.openRatePerSec, results[k].openRatePerSec),
      }])) : {},
    });
  },
});
type Opts = Parameters<typeof bench.run>[0];

const HOLD_CLIENT = clientScript('hold-client');

async function serverOpen(servers: readonly ServerProcess[]): Promise<number> {
  let sum = 0;
  for (const s of servers) sum += sumOf(await s.scrape(), CONNECTIONS_OPEN.name);
  return sum;
}

async function measure(kind: Kind, a: Opts): Promise<Record<string, unknown>> {
  const N = a.connections;
  const servers = await Promise.all(Array.from({ length: a.servers }, () => startServer(a.design)));
  const urls = servers.map((s) => s.url);
  const summaryDir = mkdtempSync(join(tmpdir(), 'wslab-bench-'));
  const summaryFile = join(summaryDir, 'summary.json');
  const client = kind === 'swarm'
    ? start([WSLAB, 'swarm', ...urls.flatMap((u) => ['--url', u]), '--connections', String(N), '--rate', String(a.rate), '--max-pending', String(a['max-pending']),
      '--hold', '2m', ...(a['source-ips'].text ? ['--source-ips', a['source-ips'].text] : []), '--summary', summaryFile])
    // bare handles run as the swarm's workers do (their V8 flags), so that what differs is only what the swarm keeps
    : start([...(kind === 'handle' ? WORKER_EXEC_ARGV : []), HOLD_CLIENT, JSON.stringify({ kind, urls, connections: N, maxPending: a['max-pending'], sourceIps: a['source-ips'].ips } satisfies HoldClientOptions)]);
  // from the started line: workers (if any) are up, nothing connected yet
  const { held, openSec, rssBaselineBytes: baseline, rssHeldBytes: rss, cpuSeconds: cpu } = await holdCost(client, N, () => serverOpen(servers), 50);
  // No client may leave TIME_WAIT on the shared source addresses (it slows the next client's connects): the swarm
  // ends its sockets with RSTs on SIGINT; for the others the servers go first, so the clients close passively.
  const exited = once(client.child, 'exit');
  if (kind === 'swarm') client.child.kill('SIGINT');
  else {
    for (const s of servers) s.child.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    client.child.kill('SIGTERM');
  }
  await exited;
  await Promise.all(servers.map((s) => { s.child.kill('SIGKILL'); return s.stop(); }));
  let self: unknown;
  if (kind === 'swarm') {
    const s = JSON.parse(readFileSync(summaryFile, 'utf8')) as { heldAtEnd: number; connectRatePerSec: number; client: { bytesPerConnection: number; workers: number } };
    self = { heldAtEnd: s.heldAtEnd, serversCountedSame: s.heldAtEnd === held, connectRatePerSec: s.connectRatePerSec, bytesPerConnection: s.client.bytesPerConnection, workers: s.client.workers };
  } else {
    self = client.lines.find((l) => l.event === 'held');
  }
  rmSync(summaryDir, { recursive: true, force: true });
  await new Promise((r) => setTimeout(r, 2000)); // let the kernel reap the sockets between clients
  return {
    held, openSec: Math.round(openSec * 100) / 100, openRatePerSec: Math.round(held / openSec),
    rssBaselineBytes: baseline, rssHeldBytes: rss, bytesPerConnection: Math.round((rss - baseline) / Math.max(1, held)),
    cpuSeconds: Math.round(cpu * 100) / 100, selfReport: self,
  };
}

