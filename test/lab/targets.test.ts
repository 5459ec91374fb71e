import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { WSLAB } from '../../lab/processes.js';
import type { LabResults } from '../../lab/results.js';
import { established } from '../../metrics/proc-status.js';
import { readTargets } from '../../lab/targets.js';

const dir = mkdtempSync(join(tmpdir(), 'wslab-targets-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => { const p = join(dir, name); writeFileSync(p, text); return p; };

/**
 * Debian python3-websockets (asyncio), under Debian's own python3 (a pyenv or venv python3 earlier on PATH does not
 * see Debian's packages); under CI=true its absence fails the test instead of skipping it.
 */
const PYTHON = '/usr/bin/python3';
const python = spawnSync(PYTHON, ['-c', 'import websockets; print(websockets.__version__)'], { encoding: 'utf8' });
const NO_PYTHON = python.status === 0 ? false : process.env.CI === 'true' ? false
  : 'needs Debian python3-websockets (.ci/run installs it; locally: apt-get install python3-websockets)';

/**
 * A server we did not write: Python's asyncio websockets, echoing every message as it came, speaking nothing of
 * our protocol and exporting no metrics.
 */
const ECHO_PY = `
import asyncio, sys, websockets
async def echo(ws, path=None):
    async for message in ws:
        await ws.send(message)
async def main():
    async with websockets.serve(echo, '127.0.0.1', int(sys.argv[1]), ping_interval=None):
        print('echo server ready', flush=True)
        await asyncio.Future()
asyncio.run(main())
`;

describe('targets file', () => {
  const bad: [string, string, RegExp][] = [
    ['not a list', 'targets: {}\n', /--targets .*: expected a mapping with a non-empty `targets:` list$/],
    ['no name', 'targets:\n  - url: ws://127.0.0.1:9000/\n', /targets\[0\]\.name: missing/],
    ['unknown key', 'targets:\n  - name: a\n    url: ws://127.0.0.1:9000/\n    colour: red\n', /targets\[0\]: unknown key "colour" \(known: name, model, runtime, start/],
    ['bad model', 'targets:\n  - name: a\n    url: ws://127.0.0.1:9000/\n    model: fast\n', /targets\[0\]\.model: "fast" is not one of loop, threads, processes, unknown/],
    ['remote url', 'targets:\n  - name: a\n    url: ws://10.0.0.1:9000/\n', /targets\[0\]\.url: .* is not a loopback address/],
    ['neither', 'targets:\n  - name: a\n', /give start \(a command the lab runs\) or url/],
    ['a port without start', 'targets:\n  - name: a\n    url: ws://127.0.0.1:{port}/\n', /need start/],
    ['bad speaks', 'targets:\n  - name: a\n    url: ws://127.0.0.1:9000/\n    speaks: [grpc]\n', /targets\[0\]\.speaks: "grpc" is not one of wslab, echo/],
    ['a design name', 'targets:\n  - name: uws\n    url: ws://127.0.0.1:9000/\n', /targets\[0\]\.name: "uws" is already taken/],
    ['twice', 'targets:\n  - name: a\n    url: ws://127.0.0.1:9000/\n  - name: a\n    url: ws://127.0.0.1:9001/\n', /targets\[1\]\.name: "a" is already taken/],
    ['an unknown scenario', 'targets:\n  - name: a\n    url: ws://127.0.0.1:9000/\n    scenarios: [idle-hodl]\n', /targets\[0\]\.scenarios: "idle-hodl" is not a scenario \(known: idle-hold/],
    ['bad regex', 'targets:\n  - name: a\n    start: [x]\n    ready: {line: "("}\n', /targets\[0\]\.ready\.line: /],
    ['not yaml', 'targets: [\n', /not YAML or JSON/],
  ];
  for (const [what, text, want] of bad) {
    it(`refuses ${what} in one line naming the key`, () => {
      assert.throws(() => readTargets(file('bad.yaml', text), ['ws', 'uws', 'threads', 'cluster'], ['idle-hold', 'blocking-call']), (e: Error) => want.test(e.message) && !e.message.includes('\n'));
    });
  }

  it('reads JSON too, with the defaults filled in', () => {
    const [t] = readTargets(file('t.json', JSON.stringify({ targets: [{ name: 'py', start: ['python3', 'srv.py', '{port}'], speaks: ['echo'], model: 'loop' }] })), []);
    assert.deepEqual({ ...t, ready: 'port' in t.ready }, {
      name: 'py', model: 'loop', start: ['python3', 'srv.py', '{port}'], cwd: dir, url: 'ws://127.0.0.1:{port}/', ready: true,
      readyTimeoutMs: 15_000, metrics: undefined, speaks: ['echo'], pid: undefined, runtime: 'unknown', scenarios: undefined, check: undefined,
    });
  });

  it('wslab lab refuses a bad targets file in one line, exit 1, before anything starts', () => {
    const out = join(dir, 'never');
    const r = spawnSync(process.execPath, [WSLAB, 'lab', '--targets', file('bad2.yaml', 'targets:\n  - name: x\n    model: quick\n    url: ws://127.0.0.1:1/\n'), '--out', out], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /targets\[0\]\.model: "quick" is not one of/);
    assert.equal(existsSync(out), false, 'no report folder');
    const unknown = spawnSync(process.execPath, [WSLAB, 'lab', '--designs', 'py-echo', '--out', out], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /unknown design "py-echo" .*servers of your own go in --targets FILE/);
  });
});

describe('connections counted from /proc/net/tcp', () => {
  it('equals the connections a plain ws server holds, whatever it counts itself', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.once('listening', r));
    const port = (wss.address() as { port: number }).port;
    const clients = await Promise.all(Array.from({ length: 37 }, () => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    })));
    try {
      assert.equal(established({ port, ip: '127.0.0.1' }), 37);
      clients.slice(0, 12).forEach((c) => c.terminate());
      for (let i = 0; i < 50 && established({ port, ip: '127.0.0.1' }) !== 25; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(established({ port, ip: '127.0.0.1' }), 25);
      // a client bound to another source address may get the server's port number as its own: not the server's
      const other = net.createServer().listen(0, '127.0.0.1');
      await once(other, 'listening');
      const stray = net.connect({ host: '127.0.0.1', port: (other.address() as net.AddressInfo).port, localAddress: '127.0.0.5', localPort: port });
      await once(stray, 'connect');
      try {
        assert.equal(established({ port, ip: '127.0.0.1' }), 25, 'the server\'s own connections only');
        assert.equal(established({ port }), 26, 'without the address, the stray client counts too');
      } finally {
        stray.destroy();
        other.close();
      }
    } finally {
      clients.forEach((c) => c.terminate());
      await new Promise((r) => wss.close(r));
    }
  });
});

describe('a foreign server in the lab: Python asyncio websockets echo, measured from outside', { skip: NO_PYTHON }, () => {
  const out = join(dir, 'reports');
  writeFileSync(join(dir, 'echo.py'), ECHO_PY);
  const targets = file('targets.yaml', [
    'targets:',
    '  - name: py-echo',
    '    model: loop',
    `    start: [${PYTHON}, echo.py, "{port}"]`,
    '    ready: {line: "echo server ready"}',
    '    speaks: [echo]',
    '',
  ].join('\n'));
  const run = python.status === 0 || process.env.CI === 'true'
    ? spawnSync(process.execPath, [WSLAB, 'lab', '--targets', targets, '--designs', 'py-echo', '--scenarios', 'idle-hold,slow-client-dos,blocking-call',
      '--scale', 'quick', '--out', out], { encoding: 'utf8', timeout: 120_000 })
    : undefined;
  const results = (): LabResults => JSON.parse(readFileSync(join(out, readdirSync(out)[0], 'results.json'), 'utf8')) as LabResults;
  const cellOf = (scenario: string) => results().scenarios.find((s) => s.id === scenario)?.cells.find((c) => c.design === 'py-echo');

  it('runs to a report', () => {
    assert.equal(python.status, 0, `python3-websockets: ${python.stderr}`);
    assert.equal(run?.status, 0, run?.stderr);
  });

  it('idle-hold: memory per connection from its process tree; its established connections equal the swarm\'s held, exactly', () => {
    const c = cellOf('idle-hold')!;
    assert.equal(c.status, 'ok', c.cause);
    assert.equal(c.figures.held, 1000);
    assert.equal(c.figures.failed, 0);
    assert.equal(c.figures.peakOpenScraped, c.figures.held, 'connections counted in /proc/net/tcp at the hold');
    // asyncio websockets keeps a protocol object, buffers and tasks per connection: a few KiB at least
    assert.ok((c.figures.rssPerConnectionBytes ?? 0) > 1024, `RSS per connection ${c.figures.rssPerConnectionBytes}`);
    assert.ok((c.figures.peakRssBytes ?? 0) > 5 * 2 ** 20, 'the Python process tree was sampled');
    assert.equal(c.traits.model, 'loop');
  });

  it('slow-client-dos: healthy clients answered (their text echoed) under slowloris, the probe saw the service', () => {
    const c = cellOf('slow-client-dos')!;
    assert.equal(c.status, 'ok', c.cause);
    assert.equal(typeof c.figures.healthyServedRate, 'number');
    assert.ok((c.figures.healthyServedRate as number) > 0.5, `served ${c.figures.healthyServedRate}`);
    assert.ok(c.series.available.some((v) => v === 1), 'the echo probe succeeded at least once');
    assert.equal(c.figures.readerRssGrowthBytes, null, 'no slow-reader phase: an echo server has no large reply');
  });

  it('a scenario it cannot run is a "not applicable" cell saying why', () => {
    const c = cellOf('blocking-call')!;
    assert.equal(c.status, 'skipped');
    assert.match(c.cause!, /^not applicable: py-echo speaks echo; blocking-call needs wslab/);
  });
});
