import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import type { AttackSummary, Summary } from '../../client/recorder.js';
import { MAX_IN_FLIGHT, Prober } from '../../client/probe.js';
import { WSLAB, eventually } from '../../lab/processes.js';

/*
 * `wslab swarm --probe` against servers written here, not ours: a plain `ws` server, one whose listener goes away and
 * comes back, an echo server, and raw TCP servers that never answer or cut every socket. The swarm's own
 * connections come from source addresses of their own, so the probe's are the ones from 127.0.0.1.
 */
const dir = mkdtempSync(join(tmpdir(), 'wslab-probe-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const SOURCES = ['--source-ips', '127.0.44.1-127.0.44.4'];

interface Run {
  /** Resolves when the `{"event":"started",…}` line is out. */
  readonly started: Promise<void>;
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string; summary: Summary | undefined }>;
}

/** The built `wslab swarm …` with a fresh --summary file; killed after 20 s so a test never hangs. */
function swarm(args: string[]): Run {
  const file = join(dir, `summary-${n++}.json`);
  const child = spawn(process.execPath, [WSLAB, 'swarm', '--summary', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let onStarted!: () => void;
  const started = new Promise<void>((resolve) => { onStarted = resolve; });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; if (stdout.includes('\n')) onStarted(); });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const done = once(child, 'exit').then(([code]) => {
    clearTimeout(kill);
    return { code: code as number | null, stdout, stderr, summary: existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Summary : undefined };
  });
  return { started, done };
}

/** The summary table's line for `key` (`probe`, `slowloris`), without its key. */
const tableLine = (stderr: string, key: string): string => {
  const line = stderr.split('\n').find((l) => new RegExp(`^ {2}${key} +`).test(l));
  assert.ok(line, `no "${key}" line in the summary table:\n${stderr}`);
  return line.replace(new RegExp(`^ {2}${key} +`), '');
};

/**
 * A TCP server on port 0 of 127.0.0.1 that hands every socket to `onSocket` (a listener of its own may take its
 * data) and counts the probe's sockets (from 127.0.0.1) open at once.
 */
async function tcpServer(onSocket: (s: Socket) => void): Promise<{ server: Server; port: number; probes: { now: number; max: number }; close: () => void }> {
  const sockets = new Set<Socket>();
  const probes = { now: 0, max: 0 };
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    const probe = s.remoteAddress === '127.0.0.1';
    if (probe) probes.max = Math.max(probes.max, ++probes.now);
    s.once('close', () => { sockets.delete(s); if (probe) probes.now--; });
    onSocket(s);
    s.resume(); // read (and drop) what comes, so that a client's FIN is seen: a paused socket never ends
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, probes, close: () => { server.close(); for (const s of sockets) s.destroy(); } };
}

/**
 * A plain `ws` server (pongs automatically) that echoes text (`silent`: answers no message) and records the probe's
 * connections: how many upgraded, and the close code of each.
 */
async function wsServer({ silent = false } = {}): Promise<{ port: number; probeOpens: () => number; probeCloses: number[]; messages: string[]; close: () => void; tcp: Awaited<ReturnType<typeof tcpServer>> }> {
  const http = createHttpServer();
  const wss = new WebSocketServer({ noServer: true });
  let opens = 0;
  const probeCloses: number[] = [];
  const messages: string[] = [];
  http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => {
    const probe = req.socket.remoteAddress === '127.0.0.1';
    if (probe) opens++;
    ws.on('message', (d) => { if (probe) messages.push(String(d)); if (!silent) ws.send(d); });
    ws.on('close', (code) => { if (probe) probeCloses.push(code); });
  }));
  const tcp = await tcpServer((s) => http.emit('connection', s));
  return { port: tcp.port, probeOpens: () => opens, probeCloses, messages, tcp, close: () => { tcp.close(); for (const c of wss.clients) c.terminate(); wss.close(); } };
}

/** How many of `codes` are `code`. */
const count = (codes: readonly number[], code: number): number => codes.filter((c) => c === code).length;

describe('wslab swarm --probe', () => {
  it('ping against a plain ws server: every probe answered, each on a fresh connection closed with 1000 (one the end cut short: 1001)', async () => {
    const srv = await wsServer();
    try {
      const { code, stderr, summary } = await swarm([...SOURCES, '--url', `ws://127.0.0.1:${srv.port}/`, '--profile', 'idle', '--connections', '5', '--hold', '3s', '--probe', 'ping']).done;
      assert.equal(code, 0, stderr);
      const p = summary!.probe!;
      assert.equal(p.mode, 'ping');
      assert.ok(p.sent >= 4, `sent ${p.sent}`);
      assert.equal(p.ok, p.sent);
      assert.equal(p.available, 1);
      assert.equal(p.failingSec, 0);
      assert.equal(p.firstFailAtSec, null);
      assert.equal(p.backAtSec, null);
      assert.ok(p.rttMs.p50! > 0 && p.rttMs.max! >= p.rttMs.p50!, JSON.stringify(p.rttMs));
      // the swarm has exited: every probe connection the server upgraded is closed, none dropped (1006)
      assert.ok(await eventually(() => srv.probeCloses.length === srv.probeOpens(), 2000), `${srv.probeOpens()} opened, closes ${srv.probeCloses.join(',')}`);
      assert.equal(count(srv.probeCloses, 1000), p.sent, `closes ${srv.probeCloses.join(',')}`);
      assert.equal(count(srv.probeCloses, 1000) + count(srv.probeCloses, 1001), srv.probeCloses.length, `closes ${srv.probeCloses.join(',')}`);
      assert.match(tableLine(stderr, 'probe'), new RegExp(`^ping every 0\\.5 s: ${p.sent}/${p.sent} answered \\(100\\.0 %\\), never failing, rtt p99 [\\d.]+ ms$`));
    } finally {
      srv.close();
    }
  });

  it('a listener that goes away 1.5 s in and comes back at 3 s: failing from then, back after', async () => {
    const srv = await wsServer();
    try {
      const run = swarm([...SOURCES, '--url', `ws://127.0.0.1:${srv.port}/`, '--profile', 'idle', '--connections', '5', '--hold', '5s', '--probe', 'ping']);
      await run.started;
      // new connections are refused while the held ones stay: the run keeps going, and the probe sees the outage
      await new Promise((r) => setTimeout(r, 1500));
      srv.tcp.server.close();
      await new Promise((r) => setTimeout(r, 1500));
      srv.tcp.server.listen(srv.port, '127.0.0.1');
      const { code, stderr, summary } = await run.done;
      assert.equal(code, 0, stderr);
      const p = summary!.probe!;
      assert.ok(p.failingSec! > 0, JSON.stringify(p));
      assert.ok(p.ok > 0 && p.ok < p.sent, JSON.stringify(p));
      assert.equal(p.available, Math.round((p.ok / p.sent) * 10_000) / 10_000);
      assert.equal(p.failingSec, (p.sent - p.ok) * 0.5);
      assert.ok(p.firstFailAtSec! >= 1 && p.firstFailAtSec! <= 3, `first fail at ${p.firstFailAtSec}`);
      assert.ok(p.backAtSec! >= p.firstFailAtSec! && p.backAtSec! <= 4.5, `back at ${p.backAtSec}`);
      assert.equal(summary!.heldAtEnd, 5, 'the held connections outlived the outage');
      assert.match(tableLine(stderr, 'probe'), new RegExp(`^ping every 0\\.5 s: ${p.ok}/${p.sent} answered \\([\\d.]+ %\\), failing ${p.failingSec!.toFixed(1)} s ` +
        `from ${p.firstFailAtSec!.toFixed(1)} s, back at ${p.backAtSec!.toFixed(1)} s, rtt p99 [\\d.]+ ms$`));
    } finally {
      srv.close();
    }
  });

  it('send against an echo server: every probe sends its text and is answered', async () => {
    const srv = await wsServer();
    try {
      const { code, stderr, summary } = await swarm([...SOURCES, '--url', `ws://127.0.0.1:${srv.port}/`, '--connections', '2', '--hold', '2s', '--probe', 'send']).done;
      assert.equal(code, 0, stderr);
      const p = summary!.probe!;
      assert.equal(p.mode, 'send');
      assert.ok(p.sent >= 3, `sent ${p.sent}`);
      assert.equal(p.ok, p.sent);
      assert.ok(srv.messages.length >= p.sent && srv.messages.every((m) => m === 'probe'), srv.messages.join(','));
    } finally {
      srv.close();
    }
  });

  it('without --probe, probe is null and the table has no probe line', async () => {
    const srv = await wsServer();
    try {
      const { code, stderr, summary } = await swarm([...SOURCES, '--url', `ws://127.0.0.1:${srv.port}/`, '--connections', '2', '--hold', '0']).done;
      assert.equal(code, 0, stderr);
      assert.equal(summary!.probe, null);
      assert.equal(summary!.histograms.probeRttUs, null);
      assert.doesNotMatch(stderr, /^ {2}probe /m);
      assert.equal(srv.probeCloses.length, 0, 'no connection from the coordinator');
    } finally {
      srv.close();
    }
  });

  it('--probe bogus: one line naming the allowed values, exit 1, before any work', async () => {
    const { code, stdout, stderr, summary } = await swarm(['--url', 'ws://127.0.0.1:1/', '--probe', 'bogus']).done;
    assert.equal(code, 1, stderr);
    assert.equal(stderr.trimEnd().split('\n').length, 1, stderr);
    assert.match(stderr, /--probe: "bogus" is not one of ping, send/);
    assert.equal(stdout, '', 'no "started" line');
    assert.equal(summary, undefined);
  });
});

describe('the summary table: did the server cut the attack?', () => {
  it('a server that never answers: slowloris "not cut within the hold"; every probe times out', async () => {
    const srv = await tcpServer(() => {});
    try {
      const { code, stderr, summary } = await swarm([...SOURCES, '--url', `ws://127.0.0.1:${srv.port}/`, '--profile', 'slowloris', '--connections', '5',
        '--hold', '4s', '--dribble-interval', '200ms', '--probe', 'ping']).done;
      assert.equal(code, 0, stderr);
      assert.equal((summary!.profiles.slowloris as AttackSummary).outcomes.held, 5);
      assert.match(tableLine(stderr, 'slowloris'), /; held 5; not cut within the hold$/);
      const p = summary!.probe!;
      assert.ok(p.sent >= 3, `sent ${p.sent}`);
      assert.equal(p.ok, 0);
      assert.equal(p.available, 0);
      assert.ok(p.firstFailAtSec! < 0.5, `first fail at ${p.firstFailAtSec}`);
      assert.equal(p.backAtSec, null);
      assert.deepEqual(p.rttMs, { p50: null, p99: null, max: null });
      assert.ok(srv.probes.max >= 3, `probe connections at once: ${srv.probes.max}`);
      assert.match(tableLine(stderr, 'probe'), new RegExp(`^ping every 0\\.5 s: 0/${p.sent} answered \\(0\\.0 %\\), failing [\\d.]+ s from 0\\.\\d s, not back by the end$`));
    } finally {
      srv.close();
    }
  });

  it('a server that drops every socket after 0.5 s: slowloris "cut at p50 0.5 s"', async () => {
    const srv = await tcpServer((s) => { setTimeout(() => s.destroy(), 500); });
    try {
      const { code, stderr, summary } = await swarm([...SOURCES, '--url', `ws://127.0.0.1:${srv.port}/`, '--profile', 'slowloris', '--connections', '5',
        '--hold', '3s', '--dribble-interval', '100ms']).done;
      assert.equal(code, 0, stderr);
      const cut = (summary!.profiles.slowloris as AttackSummary).timeToCutMs;
      assert.equal(cut.count, 5);
      assert.match(tableLine(stderr, 'slowloris'), new RegExp(`; cut at p50 ${(cut.p50! / 1000).toFixed(1)} s \\(p99 [\\d.]+ s\\)$`));
      assert.match(tableLine(stderr, 'slowloris'), /cut at p50 0\.[5-9] s/);
    } finally {
      srv.close();
    }
  });
});

describe('Prober', () => {
  it('stop() closes every probe still waiting for its answer with 1001, and closed() resolves when the server has them all', async () => {
    const srv = await wsServer({ silent: true });
    try {
      const prober = new Prober([{ url: `ws://127.0.0.1:${srv.port}/`, ip: '127.0.0.1', family: 4, port: srv.port, path: '/', host: `127.0.0.1:${srv.port}`, tls: false, hostname: '' }],
        { mode: 'send', payload: 'probe', intervalMs: 100, timeoutMs: 2000, connect: { headers: {}, protocols: [] } });
      prober.start();
      assert.ok(await eventually(() => srv.messages.length >= 3, 2000), `${srv.messages.length} probes reached the server`);
      const p = prober.stop();
      assert.equal(p.ok, 0);
      const t0 = performance.now();
      await prober.closed();
      assert.ok(performance.now() - t0 < 1000, `closed() took ${Math.round(performance.now() - t0)} ms`);
      assert.ok(await eventually(() => srv.probeCloses.length === srv.probeOpens(), 1000), `${srv.probeOpens()} opened, closes ${srv.probeCloses.join(',')}`);
      assert.ok(srv.probeOpens() >= 3 && count(srv.probeCloses, 1001) === srv.probeOpens(), `closes ${srv.probeCloses.join(',')}`);
    } finally {
      srv.close();
    }
  });

  it(`keeps at most ${MAX_IN_FLIGHT} probes waiting, counts a probe due beyond them as failing, and stop() drops every socket`, async () => {
    const srv = await tcpServer(() => {});
    try {
      // every 0.1 s with a 2 s deadline: 20 would wait on a silent server without the cap
      const prober = new Prober([{ url: `ws://127.0.0.1:${srv.port}/`, ip: '127.0.0.1', family: 4, port: srv.port, path: '/', host: `127.0.0.1:${srv.port}`, tls: false, hostname: '' }],
        { mode: 'ping', payload: 'probe', intervalMs: 100, timeoutMs: 2000, connect: { headers: {}, protocols: [] } });
      prober.start();
      await new Promise((r) => setTimeout(r, 1050));
      const p = prober.stop();
      assert.equal(srv.probes.max, MAX_IN_FLIGHT, 'probe connections open at once');
      assert.ok(p.sent >= 5 && p.sent <= 8, `sent ${p.sent}: the slots beyond the ${MAX_IN_FLIGHT} waiting, not the abandoned ones`);
      assert.equal(p.ok, 0);
      assert.equal(p.failingSec, Math.round(p.sent * 100) / 1000);
      assert.equal(p.backAtSec, null);
      assert.ok(p.firstFailAtSec! >= 0.35 && p.firstFailAtSec! <= 0.6, `the first probe beyond the cap started at ${p.firstFailAtSec}`);
      assert.ok(await eventually(() => srv.probes.now === 0, 2000), `${srv.probes.now} probe sockets still open after stop()`);
    } finally {
      srv.close();
    }
  });
});
