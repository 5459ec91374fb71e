/**
 * wss://: how much does a held TLS WebSocket cost the client, and how fast does it open? Holds N idle `wss://`
 * connections against a fresh TLS server (a `ws` server over node:https, bench/clients/tls-server.ts, with an openssl
 * self-signed certificate made here) with (a) `wslab swarm --insecure` and (b) the `ws` library's client, one after
 * the other in one run, and prints JSON: client RSS per held connection (process tree, minus its RSS just before the
 * first connect), open rate (N over first attempt → the server counting N upgraded), CPU seconds, and the ratios.
 *
 *   npm run bench -- wss-hold [--connections 10000] [--source-ips 127.0.0.2-127.0.0.9] [--clients swarm,ws]
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WSLAB } from '../lab/processes.js';
import type { HoldClientOptions } from './clients/hold-client.js';
import { BenchFailure, defineBench } from './harness/bench.js';
import { clientScript, holdCost, start, type Proc } from './harness/child.js';
import { integer, names, sourceIps } from './harness/options.js';

const KINDS = ['swarm', 'ws'] as const;
type Kind = (typeof KINDS)[number];

export const bench = defineBench({
  name: 'wss-hold',
  describe: 'wslab swarm vs a `ws` client holding N idle wss:// connections against one TLS server',
  options: {
    connections: integer(10_000, 1, 19_000, 'idle wss:// connections each client holds (one server process: at most ~19,000 here)'),
    'source-ips': sourceIps('127.0.0.2-127.0.0.9', 'source addresses for both clients, a range or comma list on loopback'),
    clients: names(KINDS.join(','), KINDS, 'the clients to compare, in order'),
    'max-pending': integer(200, 1, 100_000, 'handshakes in flight, for both clients'),
  },
  async run(o, report) {
    const dir = mkdtempSync(join(tmpdir(), 'wslab-wss-'));
    try {
      const key = join(dir, 'key.pem');
      const cert = join(dir, 'cert.pem');
      const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key,
        '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { encoding: 'utf8' });
      if (made.status !== 0) throw new BenchFailure(`openssl could not make a certificate: ${made.stderr.trim() || made.error?.message}`);
      const loadBefore = loadavg()[0];
      const results: Record<string, Record<string, unknown>> = {};
      for (const kind of o.clients) results[kind] = await measure(kind, o, { key, cert }, dir);
      const ratio = (x: unknown, y: unknown): number | null => (typeof x === 'number' && typeof y === 'number' && y > 0 ? Math.round((x / y) * 100) / 100 : null);
      report.result({
        bench: 'wss-hold', connections: o.connections, sourceIps: o['source-ips'].text, loadavgBefore: loadBefore, loadavgAfter: loadavg()[0],
        node: process.version, results,
        ratios: results.swarm && results.ws ? {
          wsBytesPerConnectionTimes: ratio(results.ws.bytesPerConnection, results.swarm.bytesPerConnection),
          swarmOpenRateTimes: ratio(results.swarm.openRatePerSec, results.ws.openRatePerSec),
        } : {},
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});
type Opts = Parameters<typeof bench.run>[0];

/** Upgraded connections the TLS server holds now (its GET /count). */
const count = (port: number): Promise<number> => new Promise((resolve, reject) => {
  get({ host: '127.0.0.1', port, path: '/count', rejectUnauthorized: false, agent: false }, (res) => {
    let body = '';
    res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve(Number(body)));
  }).on('error', reject);
});

async function measure(kind: Kind, o: Opts, pem: { key: string; cert: string }, dir: string): Promise<Record<string, unknown>> {
  const N = o.connections;
  const server: Proc = start([clientScript('tls-server'), JSON.stringify(pem)]);
  const { port } = await server.nextLine() as { port: number };
  const url = `wss://127.0.0.1:${port}/`;
  const summaryFile = join(dir, `summary-${kind}.json`);
  const client = kind === 'swarm'
    ? start([WSLAB, 'swarm', '--url', url, '--insecure', '--connections', String(N), '--max-pending', String(o['max-pending']), '--hold', '2m',
      ...(o['source-ips'].text ? ['--source-ips', o['source-ips'].text] : []), '--summary', summaryFile])
    : start([clientScript('hold-client'), JSON.stringify({
      kind: 'ws', urls: [url], connections: N, maxPending: o['max-pending'], sourceIps: o['source-ips'].ips, insecure: true,
    } satisfies HoldClientOptions)]);
  try {
    const { held, openSec, rssBaselineBytes: baseline, rssHeldBytes: rss, cpuSeconds: cpu } = await holdCost(client, N, () => count(port), 100);
    const exited = once(client.child, 'exit');
    if (kind === 'swarm') client.child.kill('SIGINT');
    else client.child.kill('SIGTERM');
    await exited;
    let self: unknown = client.lines.find((l) => l.event === 'held');
    if (kind === 'swarm') {
      const s = JSON.parse(readFileSync(summaryFile, 'utf8')) as { heldAtEnd: number; connectRatePerSec: number; connectLatencyMs: unknown; client: { bytesPerConnection: number; workers: number } };
      self = { heldAtEnd: s.heldAtEnd, connectRatePerSec: s.connectRatePerSec, connectLatencyMs: s.connectLatencyMs, bytesPerConnection: s.client.bytesPerConnection, workers: s.client.workers };
    }
    return {
      held, openSec: Math.round(openSec * 100) / 100, openRatePerSec: Math.round(held / openSec),
      rssBaselineBytes: baseline, rssHeldBytes: rss, bytesPerConnection: Math.round((rss - baseline) / Math.max(1, held)),
      cpuSeconds: Math.round(cpu * 100) / 100, selfReport: self,
    };
  } finally {
    client.child.kill('SIGKILL');
    server.child.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 2000)); // let the kernel reap the sockets between clients
  }
}
