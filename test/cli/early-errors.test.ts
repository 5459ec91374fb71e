import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { WSLAB } from '../../lab/processes.js';
import { assembleSummary, type SummaryParts } from '../../client/summary.js';
import { latencyHistogram } from '../../client/profiles.js';

/**
 * What a hostile user found (issue: reliability): mistakes that surfaced only after the work, or said the wrong
 * thing. Each must be one line and exit 1 before anything runs, with the fix in the line.
 */
const dir = mkdtempSync(join(tmpdir(), 'wslab-early-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function wslab(args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [WSLAB, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => child.once('exit', (code) => { clearTimeout(kill); resolve({ code: code ?? 137, stdout, stderr }); }));
}

const oneLine = (r: { code: number; stdout: string; stderr: string }, pattern: RegExp, label: string): void => {
  assert.equal(r.code, 1, `${label}: ${r.stderr}`);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, `${label}: ${r.stderr}`);
  assert.match(r.stderr, pattern, label);
  assert.equal(r.stdout, '', `${label}: nothing ran`);
};

describe('paths the run will write are checked before any work', () => {
  it('wslab lab --out <an existing file> is refused at once (not after the whole lab)', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    oneLine(await wslab(['lab', '--scale', 'quick', '--out', file]), /--out: ".*a-file" is a file, not a folder/, 'a file');
    oneLine(await wslab(['lab', '--scale', 'quick', '--out', join(file, 'sub')]), /--out: cannot write into ".*a-file\/sub" \(a file is in the way\)/, 'under a file');
  });

  it('wslab swarm --summary <a directory> or an unwritable path is refused before connecting', async () => {
    oneLine(await wslab(['swarm', '--url', 'ws://127.0.0.1:1/', '--summary', dir]), /--summary: ".*" is a directory: give a file path/, 'a directory');
    oneLine(await wslab(['swarm', '--url', 'ws://127.0.0.1:1/', '--summary', '/sys/kernel/wslab-summary.json']), /--summary: cannot write ".*" \(E[A-Z]+\)/, 'sysfs');
  });
});

describe('checks that said the wrong thing, or nothing', () => {
  it('a design flag on another design is refused, not silently ignored', async () => {
    oneLine(await wslab(['serve', '--design', 'ws', '--pool', '8']), /--pool applies to --design threads only \(this is --design ws\)/, '--pool on ws');
    oneLine(await wslab(['serve', '--design', 'uws', '--workers', '4']), /--workers applies to --design cluster only \(this is --design uws\)/, '--workers on uws');
  });

  it('a port in use says to pick another, or --port 0', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    try {
      const port = (taken.address() as AddressInfo).port;
      for (const design of ['ws', 'uws']) {
        oneLine(await wslab(['serve', '--design', design, '--port', String(port), '--metrics-port', '0']),
          new RegExp(`--port: 127\\.0\\.0\\.1:${port} is in use .*: pick another --port, or --port 0 for any free port`), design);
      }
    } finally {
      taken.close();
    }
  });

  it('a --source-ips address that is not this machine\'s is refused up front (not found by failing connects)', async () => {
    oneLine(await wslab(['swarm', '--url', 'ws://127.0.0.1:1/', '--source-ips', '127.0.0.2,192.0.2.77']),
      /--source-ips: 192\.0\.2\.77 is not an address of this machine/, 'TEST-NET address');
  });

  it('ws://[::ffff:127.0.0.1] is loopback', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    try {
      const r = await wslab(['swarm', '--url', `ws://[::ffff:127.0.0.1]:${(wss.address() as AddressInfo).port}/`, '--connections', '5', '--hold', '300ms']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /held at end\s+5/);
    } finally {
      wss.close();
    }
  });

  it('client RSS that fell below its baseline gives no (negative) bytes per held connection', () => {
    const parts = {
      target: 1, opened: 1, failed: {}, lost: {}, peakOpen: 1, heldAtEnd: 1, rampSec: 1, connect: latencyHistogram(), rtt: latencyHistogram(),
      messages: {}, client: { rssBytes: 100, baselineRssBytes: 200, cpuSeconds: 0, workers: 1, maxEventLoopDelayMs: 0, maxCpuPercent: 0 },
      server: null, durationSec: 1, warnings: [], interrupted: false, serverDied: false, misunderstood: false, shard: null,
      clock: { startedAtMs: 0, firstAttemptAtMs: null, lastOpenedAtMs: null }, merged: null, profiles: {}, probe: null,
    } as unknown as SummaryParts;
    assert.equal(assembleSummary(parts).client.bytesPerConnection, null);
    assert.equal(assembleSummary({ ...parts, client: { ...parts.client, rssBytes: 1200 } }).client.bytesPerConnection, 1000);
  });
});
