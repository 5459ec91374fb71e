import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { WSLAB } from '../../lab/processes.js';

const run = (...args: string[]) => spawnSync(process.execPath, [WSLAB, ...args], { encoding: 'utf8', timeout: 15_000 });

describe('wslab serve: bad input', () => {
  const cases: [string[], RegExp][] = [
    [['serve', '--design', 'nope'], /--design: unknown design "nope" \(known: ws, uws/],
    [['serve', '--port', '70000'], /--port: "70000" must be a whole number from 0 to 65535/],
    [['serve', '--port', 'abc'], /--port: "NaN" must be a whole number|--port: "abc"/],
    [['serve', '--idle-timeout', '10x'], /--idle-timeout: "10x" is not a duration \(use e\.g\. 500ms, 10s/],
    [['serve', '--handshake-timeout', '10'], /--handshake-timeout: "10" is not a duration/],
    [['serve', '--max-payload', '12zz'], /--max-payload: "12zz" is not a size/],
    [['serve', '--max-backpressure', '0'], /--max-backpressure: must be at least 1 byte/],
    [['serve', '--host', 'not-an-ip'], /--host: "not-an-ip" is not an IP address/],
    [['serve', '--design', 'uws', '--handshake-timeout', '2s'], /uws fixes the handshake timeout at 10s/],
    [['serve', '--port', '9000', '--metrics-port', '9000'], /--port and --metrics-port are both 9000/],
    [['serve', '--max-conns-per-ip', '-1'], /--max-conns-per-ip: "-1" must be a whole number from 0 to 1000000/],
    [['serve', '--max-conns-per-ip', 'lots'], /--max-conns-per-ip: "lots" must be a whole number/],
    [['serve', '--no-defenses', '--max-payload', '1MiB'], /--no-defenses turns every limit off, so it conflicts with --max-payload: drop one/],
    [['serve', '--design', 'threads', '--no-defenses', '--idle-timeout', '2m', '--max-conns-per-ip', '5'],
      /conflicts with --idle-timeout, --max-conns-per-ip/],
    [['serve', '--design', 'threads', '--no-defenses', '--thread-stack', '1KiB'], /--thread-stack: must be from 64KiB/],
    [['serve', '--design', 'ws', '--thread-stack', '1MiB'], /--thread-stack applies to --design threads only \(this is --design ws\)/],
    [['serve', '--design', 'threads', '--deflate'], /--deflate: --design threads does not negotiate permessage-deflate; use --design ws, uws, cluster/],
    [['serve', '--design', 'ws', '--no-defenses', '--max-fragments', '64'], /--no-defenses turns every limit off, so it conflicts with --max-fragments/],
    [['serve', '--design', 'uws', '--max-fragments', '64'], /--max-fragments applies to --design ws only \(this is --design uws\)/],
    [['serve', '--design', 'ws', '--max-fragments', '0'], /--max-fragments: "0" must be a whole number from 1/],
    [['serve', '--bogus', '1'], /Unknown argument: bogus/],
    [['frobnicate'], /Unknown argument: frobnicate|Unknown command/i],
    [[], /name a command/],
  ];
  for (const [args, message] of cases) {
    it(`rejects ${args.join(' ') || '(no command)'} with one line and exit 1`, () => {
      const r = run(...args);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line, got:\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(r.stdout, '');
    });
  }

  it('reports a port in use as one line', async () => {
    const net = await import('node:net');
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const port = String((blocker.address() as { port: number }).port);
    try {
      for (const design of ['ws', 'uws']) {
        const r = run('serve', '--design', design, '--port', port, '--metrics-port', '0');
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /EADDRINUSE|in use/);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      }
    } finally {
      blocker.close();
    }
  });
});

describe('wslab --help', () => {
  it('documents every serve option with its default', () => {
    const r = run('serve', '--help');
    assert.equal(r.status, 0);
    for (const flag of ['--design', '--host', '--port', '--metrics-host', '--metrics-port', '--max-payload', '--idle-timeout',
      '--max-backpressure', '--handshake-timeout', '--max-conns-per-ip', '--no-defenses', '--pool', '--thread-stack', '--workers', '--inner']) {
      assert.match(r.stdout, new RegExp(`${flag}\\b`), `${flag} in --help`);
    }
    assert.match(r.stdout, /\[default: "120s"\]/);
  });
});
