/**
 * How light is the swarm? Holds N idle connections against fresh uws server processes with (a) `wslab swarm`,
 * (b) a plain `ws` library client and (c) a careful `net.Socket` client on the swarm's codec, one after the other
 * in one run, and prints JSON: client RSS per held connection (whole process tree, minus its RSS just before the
 * first connect), open rate, CPU seconds, and the ratios.
 *
 *   npm run build && node dist/bench/swarm-vs-ws-client.js [--connections 15000] [--servers 1]
 *     [--source-ips 127.0.0.2-127.0.0.9] [--clients swarm,ws,net] [--rate 20000]
 *
 * Measured from outside the client, the same way for all three: RSS and CPU come from /proc for the client's
 * process tree; "held" is the moment the servers' scraped `wslab_connections_open` reaches N; the open rate is N
 * over the time from the client's first connect attempt to that moment (polled every 50 ms, so it is a slight
 * under-estimate). The swarm's own summary figures are reported next to them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseExposition, sumOf } from '../metrics/exposition.js';
import { CONNECTIONS_OPEN } from '../metrics/index.js';

const WSLAB = fileURLToPath(new URL('../cli/wslab.js', import.meta.url));
const HOLD_CLIENT = fileURLToPath(new URL('./hold-client.js', import.meta.url));
const { values: a } = parseArgs({
  options: {
    connections: { type: 'string', default: '15000' },
    servers: { type: 'string', default: '1' },
    'source-ips': { type: 'string', default: '127.0.0.2-127.0.0.9' },
    clients: { type: 'string', default: 'swarm,ws,net' },
    rate: { type: 'string', default: '20000' },
    'max-pending': { type: 'string', default: '1000' },
  },
});
const N = Number(a.connections);
const CLK_TCK = 100;

interface Proc { child: ChildProcess; lines: Record<string, unknown>[]; nextLine(): Promise<Record<string, unknown>> }

function start(args: string[]): Proc {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const waiters: ((l: Record<string, unknown>) => void)[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const l = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      const w = waiters.shift();
      if (w) w(l); else lines.push(l);
    }
  });
  child.stderr!.resume();
  return {
    child, lines,
    nextLine: () => new Promise((resolve, reject) => {
      const l = lines.shift();
      if (l) return resolve(l);
      const t = setTimeout(() => reject(new Error(`no line from ${args.join(' ')} within 20 s`)), 20_000);
      waiters.push((x) => { clearTimeout(t); resolve(x); });
    }),
  };
}

/** The pid and every descendant. */
function tree(pid: number): number[] {
  const out = [pid];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (kids) for (const k of kids.split(/\s+/)) out.push(...tree(Number(k)));
    }
  } catch { /* exited */ }
  return out;
}
function treeRss(pid: number): number {
  return tree(pid).reduce((sum, p) => {
    try { return sum + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))![1]) * 1024; } catch { return sum; }
  }, 0);
}
function treeCpu(pid: number): number {
  return tree(pid).reduce((sum, p) => {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      return sum + (Number(f[11]) + Number(f[12])) / CLK_TCK;
    } catch { return sum; }
  }, 0);
}

async function serverOpen(metrics: string[]): Promise<number> {
  let sum = 0;
  for (const m of metrics) sum += sumOf(parseExposition(await (await fetch(m)).text()), CONNECTIONS_OPEN.name);
  return sum;
}

async function measure(kind: string): Promise<Record<string, unknown>> {
  const servers = Array.from({ length: Number(a.servers) }, () => start([WSLAB, 'serve', '--design', 'uws', '--port', '0', '--metrics-port', '0']));
  const ready = await Promise.all(servers.map((s) => s.nextLine()));
  const urls = ready.map((r) => String(r.url));
  const metrics = ready.map((r) => String(r.metrics));
  const summaryDir = mkdtempSync(join(tmpdir(), 'wslab-bench-'));
  const summaryFile = join(summaryDir, 'summary.json');
  const client = kind === 'swarm'
    ? start([WSLAB, 'swarm', ...urls.flatMap((u) => ['--url', u]), '--connections', String(N), '--rate', a.rate!, '--max-pending', a['max-pending']!,
      '--hold', '2m', '--source-ips', a['source-ips']!, '--summary', summaryFile])
    : start([HOLD_CLIENT, '--kind', kind, ...urls.flatMap((u) => ['--url', u]), '--connections', String(N), '--max-pending', a['max-pending']!,
      '--source-ips', a['source-ips']!]);
  const pid = client.child.pid!;
  await client.nextLine(); // started: workers (if any) are up, nothing connected yet
  const baseline = treeRss(pid);
  const cpu0 = treeCpu(pid);
  const t0 = performance.now();
  let open = 0, last = 0, lastChange = performance.now();
  while (open < N && performance.now() - lastChange < 15_000) {
    await new Promise((r) => setTimeout(r, 50));
    open = await serverOpen(metrics);
    if (open !== last) { last = open; lastChange = performance.now(); }
  }
  const openSec = (lastChange - t0) / 1000;
  await new Promise((r) => setTimeout(r, 1500)); // let allocation settle before sampling
  const held = await serverOpen(metrics);
  const rss = treeRss(pid);
  const cpu = treeCpu(pid) - cpu0;
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
  for (const s of servers) s.child.kill('SIGKILL');
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

const loadBefore = loadavg()[0];
const results: Record<string, Record<string, unknown>> = {};
for (const kind of a.clients!.split(',')) results[kind] = await measure(kind);
const ratio = (x: unknown, y: unknown): number | null => (typeof x === 'number' && typeof y === 'number' && y > 0 ? Math.round((x / y) * 100) / 100 : null);
const sw = results.swarm;
process.stdout.write(`${JSON.stringify({
  bench: 'swarm-vs-ws-client', connections: N, servers: Number(a.servers), sourceIps: a['source-ips'], loadavgBefore: loadBefore, loadavgAfter: loadavg()[0],
  node: process.version, results,
  ratios: sw ? Object.fromEntries(Object.keys(results).filter((k) => k !== 'swarm').map((k) => [k, {
    bytesPerConnection: ratio(results[k].bytesPerConnection, sw.bytesPerConnection),
    swarmOpenRateTimes: ratio(sw.openRatePerSec, results[k].openRatePerSec),
  }])) : {},
}, null, 2)}\n`);
