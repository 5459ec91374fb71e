import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createServer as createHttp } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import type { HealthySummary } from '../../client/recorder.js';
import { expectUsageErrors, swarmRunner } from '../helpers/swarm-run.js';

/**
 * The swarm against servers that do not speak our protocol: Debian's python3-websockets echo server, and `ws`
 * servers written here (a JSON request/reply server, one that wants a token and a subprotocol, a TLS one with an
 * openssl self-signed certificate, a push server). Each asserts what the user reads in the summary.
 */
const dir = mkdtempSync(join(tmpdir(), 'wslab-foreign-'));
const swarm = swarmRunner(dir);
after(() => rmSync(dir, { recursive: true, force: true }));

const chatty = (s: { profiles: Record<string, unknown> } | undefined): HealthySummary => s!.profiles.chatty as HealthySummary;

/** A `ws` server on port 0 with `onConnection`; closed after the suite. */
async function wsServer(onConnection: (ws: WebSocket, req: import('node:http').IncomingMessage) => void,
  options: ConstructorParameters<typeof WebSocketServer>[0] = {}): Promise<{ wss: WebSocketServer; url: string }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options });
  wss.on('connection', onConnection);
  if (!options.server) await once(wss, 'listening');
  const port = ((options.server ?? wss).address() as AddressInfo).port;
  return { wss, url: `ws://127.0.0.1:${port}/` };
}

const hasPython = spawnSync('/usr/bin/python3', ['-c', 'import websockets'], { stdio: 'ignore' }).status === 0;
const skipPython = hasPython || process.env.CI === 'true' ? false : 'needs Debian python3-websockets (.ci/run installs it)';

describe('swarm against python3-websockets (an echo server)', { skip: skipPython }, () => {
  let py: ChildProcess;
  let url: string;
  before(async () => {
    assert.ok(hasPython, 'Debian python3-websockets: .ci/run installs it');
    const script = join(dir, 'echo.py');
    writeFileSync(script, [
      'import asyncio, websockets',
      'async def echo(ws, path=None):',
      '    async for m in ws:',
      '        await ws.send(m)',
      'async def main():',
      '    async with websockets.serve(echo, "127.0.0.1", 0) as srv:',
      '        print(srv.sockets[0].getsockname()[1], flush=True)',
      '        await asyncio.sleep(120)',
      'asyncio.run(main())',
    ].join('\n'));
    py = spawn('/usr/bin/python3', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = await once(py.stdout!, 'data') as [Buffer];
    url = `ws://127.0.0.1:${String(line).trim()}/`;
  });
  after(() => { py?.kill('SIGKILL'); });

  it('--send with --match echo: every reply is matched to its request and timed', async () => {
    const r = await swarm(['--url', url, '--connections', '20', '--profile', 'chatty', '--interval', '100ms', '--hold', '2s',
      '--send', 'hello {{conn}}/{{seq}} {{rand:12}} at {{now}}', '--match', 'echo']).done;
    assert.equal(r.code, 0, r.stderr);
    const c = chatty(r.summary);
    assert.ok(r.summary!.messages.sent >= 20 * 15, `sent ${r.summary!.messages.sent}`);
    // every reply matched; the last request of a connection may be in flight when its close handshake starts
    assert.equal(c.repliesOk, r.summary!.messages.received, r.stderr);
    assert.ok(r.summary!.messages.received >= r.summary!.messages.sent - 20, r.stderr);
    assert.equal(c.replyErrors + c.unmatched, 0);
    assert.equal(c.rttMs.count, r.summary!.messages.received);
    assert.ok(c.rttMs.p50! > 0 && c.rttMs.p50! < 50, `rtt p50 ${c.rttMs.p50} ms on loopback`);
  });

  it('--deflate: it accepts permessage-deflate (window 12 bits) and compresses every echo; each inflates and matches', async () => {
    const r = await swarm(['--url', url, '--connections', '20', '--profile', 'chatty', '--interval', '100ms', '--hold', '2s', '--deflate',
      '--send', 'hello {{conn}}/{{seq}} {{rand:12}}', '--match', 'echo']).done;
    assert.equal(r.code, 0, r.stderr);
    const c = chatty(r.summary);
    assert.equal(c.deflated, 20);
    assert.ok(r.summary!.messages.received >= r.summary!.messages.sent - 20 && r.summary!.messages.sent >= 20 * 15, r.stderr);
    assert.equal(c.repliesOk, r.summary!.messages.received);
    assert.equal(c.replyErrors + c.unmatched, 0);
  });

  it('our protocol against an echo server: a warning naming the cause, and exit 2 (not "served 0 %" and exit 0)', async () => {
    const r = await swarm(['--url', url, '--connections', '10', '--profile', 'chatty', '--interval', '100ms', '--hold', '1500ms']).done;
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /replies were errors or answered no request: the server does not speak the wslab protocol: use --send\/--match/);
    assert.equal(r.summary!.misunderstood, true);
    assert.equal(chatty(r.summary).servedRate, 0);
  });
});

describe('swarm against a JSON request/reply server', () => {
  let url: string;
  let wss: WebSocketServer;
  let answerType = 'pong';
  const conns = new Set<number>();
  before(async () => {
    ({ wss, url } = await wsServer((ws) => {
      ws.on('message', (data) => {
        const { id, conn } = JSON.parse(String(data)) as { id: number; conn?: number };
        if (conn !== undefined) conns.add(conn);
        setTimeout(() => ws.send(JSON.stringify({ id, type: answerType })), 20);
      });
      // a push nobody asked for: not a reply, counted apart
      ws.send(JSON.stringify({ type: 'hello' }));
    }));
  });
  after(() => { wss.clients.forEach((c) => c.terminate()); wss.close(); });

  it('--match json:id: the reply carrying the request\'s {{id}} times it from its intended send (p50 20–30 ms)', async () => {
    answerType = 'pong';
    const r = await swarm(['--url', url, '--connections', '10', '--profile', 'chatty', '--interval', '100ms', '--hold', '2s',
      '--send', '{"id":{{id}},"type":"ping","conn":{{conn}}}', '--match', 'json:id', '--expect', 'json:type==pong']).done;
    assert.equal(r.code, 0, r.stderr);
    const c = chatty(r.summary);
    assert.ok(c.rttMs.p50! >= 20 && c.rttMs.p50! <= 30, `rtt p50 ${c.rttMs.p50} ms for a 20 ms server`);
    assert.equal(c.replyErrors, 0);
    assert.equal(c.unmatched, 10, 'one hello push per connection');
    assert.equal(r.summary!.messages.pushed, 10);
    assert.ok(c.repliesOk >= r.summary!.messages.sent - 10, `${c.repliesOk} of ${r.summary!.messages.sent} (the last may be in flight at the close)`);
  });

  it('--shard 2/3: the shard\'s messages carry global {{conn}} and {{id}}, and their replies match', async () => {
    answerType = 'pong';
    conns.clear();
    const r = await swarm(['--url', url, '--connections', '9', '--shard', '2/3', '--profile', 'chatty', '--interval', '100ms', '--hold', '1s',
      '--send', '{"id":{{id}},"conn":{{conn}}}', '--match', 'json:id']).done;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...conns].sort(), [6, 7, 8]);
    const c = chatty(r.summary);
    assert.ok(c.repliesOk >= 3 * 5 && c.replyErrors === 0 && c.unmatched === 3, `ok ${c.repliesOk}, errors ${c.replyErrors}, unmatched ${c.unmatched}`);
  });

  it('--expect that fails on every reply: counted as error replies, warned about, exit 2', async () => {
    answerType = 'error';
    const r = await swarm(['--url', url, '--connections', '5', '--profile', 'chatty', '--interval', '100ms', '--hold', '1500ms',
      '--send', '{"id":"{{id}}"}', '--match', 'json:id', '--expect', 'json:type==pong']).done;
    assert.equal(r.code, 2, r.stderr);
    const c = chatty(r.summary);
    assert.ok(c.replyErrors >= 50, `${c.replyErrors} error replies`);
    assert.equal(c.repliesOk, 0);
    assert.match(r.stderr, /replies were errors or answered no request/);
  });

  it('--match regex:RE takes the id from the first group', async () => {
    answerType = 'pong';
    const r = await swarm(['--url', url, '--connections', '5', '--profile', 'chatty', '--interval', '100ms', '--hold', '1500ms',
      '--send', '{"id":{{id}}}', '--match', 'regex:"id":(\\d+)', '--expect', 'regex:"type":"pong"']).done;
    assert.equal(r.code, 0, r.stderr);
    const c = chatty(r.summary);
    assert.ok(c.repliesOk >= 5 * 10, `${c.repliesOk} matched`);
    assert.ok(c.rttMs.p50! >= 20 && c.rttMs.p50! <= 30, `rtt p50 ${c.rttMs.p50}`);
  });
});

describe('swarm handshake: headers, --vars tokens, subprotocols', () => {
  let url: string;
  let wss: WebSocketServer;
  const seen: { token: string; conn: string; origin?: string; ua?: string; protocol: string }[] = [];
  before(async () => {
    ({ wss, url } = await wsServer((ws, req) => {
      seen.push({ token: String(req.headers.authorization), conn: String(req.headers['x-conn']), origin: req.headers.origin, ua: req.headers['user-agent'], protocol: ws.protocol });
    }, {
      verifyClient: (info, cb) => {
        if (!info.req.headers.authorization?.startsWith('Bearer ')) return cb(false, 401, 'Unauthorized');
        if (!String(info.req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim()).includes('chat.v2')) return cb(false, 400, 'chat.v2 required');
        cb(true);
      },
      handleProtocols: (protocols) => (protocols.has('chat.v2') ? 'chat.v2' : false),
    }));
  });
  after(() => { wss.clients.forEach((c) => c.terminate()); wss.close(); });

  it('without the token every upgrade is refused (401): counted as handshake_rejected, exit 2', async () => {
    const r = await swarm(['--url', url, '--connections', '6', '--hold', '500ms', '--subprotocol', 'chat.v2']).done;
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.summary!.failed.handshake_rejected, 6);
    assert.match(r.stderr, /401/);
  });

  it('--header with {{var:token}} from --vars, --origin and --subprotocol: the server sees each connection\'s own token', async () => {
    seen.length = 0;
    const vars = join(dir, 'tokens.csv');
    writeFileSync(vars, 'token,name\nalpha,a\n"be,ta",b\ngamma,c\n');
    const r = await swarm(['--url', url, '--connections', '9', '--hold', '1500ms', '--vars', vars,
      '--header', 'Authorization: Bearer {{var:token}}', '--header', 'X-Conn: {{conn}}', '--origin', 'https://app.example',
      '--subprotocol', 'chat.v1,chat.v2', '--probe', 'ping']).done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.summary!.opened, 9);
    // the probe's fresh connections carry the same headers and subprotocol (connection 0's token), so they get in
    const probe = r.summary!.probe!;
    assert.ok(probe.sent >= 2 && probe.ok === probe.sent, `probe ${probe.ok}/${probe.sent}`);
    // (the probe's connections say X-Conn: 0 too, with connection 0's token: the map below keeps one per connection)
    const byConn = new Map(seen.map((s) => [Number(s.conn), s]));
    assert.equal(byConn.size, 9);
    for (const [conn, s] of byConn) {
      assert.equal(s.token, `Bearer ${['alpha', 'be,ta', 'gamma'][conn % 3]}`, `connection ${conn}`);
      assert.equal(s.origin, 'https://app.example');
      assert.match(s.ua!, /^wslab\/\d+\.\d+\.\d+/);
      assert.equal(s.protocol, 'chat.v2');
    }
  });

  it('--shard: {{conn}} in a header is the global connection index', async () => {
    seen.length = 0;
    const r = await swarm(['--url', url, '--connections', '10', '--shard', '1/2', '--hold', '300ms', '--header', 'Authorization: Bearer x',
      '--header', 'X-Conn: {{conn}}', '--subprotocol', 'chat.v2']).done;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(seen.map((x) => Number(x.conn)).sort((x, y) => x - y), [5, 6, 7, 8, 9]);
  });

  it('a subprotocol the server does not choose fails the upgrade as protocol_error', async () => {
    const plain = await wsServer(() => {}, { handleProtocols: () => false }); // accepts, choosing none
    try {
      const r = await swarm(['--url', plain.url, '--connections', '3', '--hold', '300ms', '--subprotocol', 'chat.v3']).done;
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.summary!.failed.protocol_error, 3);
      assert.match(r.stderr, /chose no subprotocol \(offered chat\.v3\)/);
    } finally {
      plain.wss.close();
    }
  });
});

describe('swarm --deflate against ws servers', () => {
  it('a server that compresses every message: negotiated by all, every reply inflated and answered', async () => {
    const z = await wsServer((ws) => ws.on('message', (d, binary) => ws.send(d, { binary })), { perMessageDeflate: { threshold: 0 } });
    try {
      const r = await swarm(['--url', z.url, '--connections', '5', '--profile', 'chatty', '--interval', '100ms', '--hold', '1s', '--deflate',
        '--send', '{"conn":{{conn}},"seq":{{seq}},"pad":"{{rand:200}}"}', '--match', 'echo']).done;
      assert.equal(r.code, 0, r.stderr);
      const c = chatty(r.summary);
      assert.equal(c.deflated, 5);
      assert.equal(c.replyErrors + c.unmatched, 0);
      assert.ok(c.repliesOk >= r.summary!.messages.sent - 5 && c.repliesOk > 0, `${c.repliesOk} of ${r.summary!.messages.sent}`);
    } finally {
      z.wss.close();
    }
  });

  it('a server that declines the offer: held uncompressed (deflated 0); one that answers an extension not offered: protocol_error', async () => {
    const plain = await wsServer(() => {});
    // answers every upgrade with permessage-deflate, asked or not (RFC 6455 §9.1: the client must then fail it)
    const sockets = new Set<import('node:stream').Duplex>();
    const rogue = createHttp().on('upgrade', (req, socket) => {
      sockets.add(socket.on('error', () => {})); // the swarm resets what it fails
      const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
        'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n');
    });
    await new Promise<void>((resolve) => rogue.listen(0, '127.0.0.1', resolve));
    try {
      const held = await swarm(['--url', plain.url, '--connections', '3', '--hold', '300ms', '--deflate']).done;
      assert.equal(held.code, 0, held.stderr);
      assert.equal(held.summary!.profiles.idle.deflated, 0);
      assert.equal(held.summary!.heldAtEnd, 3);
      const r = await swarm(['--url', `ws://127.0.0.1:${(rogue.address() as AddressInfo).port}/`, '--connections', '3', '--hold', '300ms']).done;
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.summary!.failed.protocol_error, 3);
      assert.equal(r.summary!.profiles.idle.deflated, null);
      assert.match(r.stderr, /the server chose extension "permessage-deflate; server_no_context_takeover" though none was offered/);
    } finally {
      plain.wss.close();
      for (const x of sockets) x.destroy();
      rogue.close();
    }
  });
});

const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
const skipTls = hasOpenssl || process.env.CI === 'true' ? false : 'needs Debian openssl (.ci/run installs it)';

describe('swarm over wss:// (an openssl self-signed certificate)', { skip: skipTls }, () => {
  let url: string;
  let https: ReturnType<typeof createHttps>;
  let wss: WebSocketServer;
  let cert: string;
  before(async () => {
    const key = join(dir, 'key.pem');
    cert = join(dir, 'cert.pem');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key,
      '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { encoding: 'utf8' });
    assert.equal(made.status, 0, `openssl: ${made.stderr}`);
    https = createHttps({ key: readFileSync(key), cert: readFileSync(cert) });
    https.listen(0, '127.0.0.1');
    await once(https, 'listening');
    ({ wss } = await wsServer((ws) => ws.on('message', (d) => ws.send(d)), { server: https, host: undefined, port: undefined }));
    url = `wss://127.0.0.1:${(https.address() as AddressInfo).port}/`;
  });
  after(() => { wss.clients.forEach((c) => c.terminate()); wss.close(); https.close(); });

  it('without --ca or --insecure every attempt is a certificate error, and the first message says the fix', async () => {
    const r = await swarm(['--url', url, '--connections', '5', '--hold', '300ms']).done;
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.summary!.failed.tls_certificate, 5);
    assert.match(r.stderr, /first tls_certificate: DEPTH_ZERO_SELF_SIGNED_CERT.*pass --ca FILE/);
  });

  it('--insecure: held and echoed over TLS, and the probe asks the same over TLS', async () => {
    const r = await swarm(['--url', url, '--connections', '10', '--hold', '1500ms', '--insecure', '--profile', 'chatty', '--interval', '100ms',
      '--send', 'x{{seq}}', '--match', 'echo', '--probe', 'send']).done;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.summary!.probe!.sent >= 2 && r.summary!.probe!.ok === r.summary!.probe!.sent, JSON.stringify(r.summary!.probe));
    assert.equal(r.summary!.heldAtEnd, 10);
    assert.equal(chatty(r.summary).unmatched + chatty(r.summary).replyErrors, 0);
    assert.ok(chatty(r.summary).repliesOk >= 80);
  });

  it('a ws:// and a wss:// target in one run: connections and probes each use their own target\'s scheme', async () => {
    const plain = await wsServer(() => {});
    try {
      const r = await swarm(['--url', url, '--url', plain.url, '--connections', '6', '--hold', '1500ms', '--insecure', '--probe', 'ping']).done;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.summary!.heldAtEnd, 6);
      const probe = r.summary!.probe!;
      assert.ok(probe.sent >= 2 && probe.ok === probe.sent, JSON.stringify(probe));
    } finally {
      plain.wss.close();
    }
  });

  it('--ca with --servername localhost verifies the certificate', async () => {
    const r = await swarm(['--url', url, '--connections', '5', '--hold', '300ms', '--ca', cert, '--servername', 'localhost']).done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.summary!.heldAtEnd, 5);
    const wrongName = await swarm(['--url', url, '--connections', '2', '--hold', '300ms', '--ca', cert]).done;
    assert.equal(wrongName.summary!.failed.tls_certificate, 2, 'the certificate names localhost, not 127.0.0.1');
  });
});

describe('swarm --subscribe against a push server', () => {
  let url: string;
  let wss: WebSocketServer;
  before(async () => {
    ({ wss, url } = await wsServer((ws) => {
      ws.once('message', (data) => {
        const { conn } = JSON.parse(String(data)) as { conn: number };
        let n = 0;
        // every 100 ms; connection 0 goes silent after 5 messages
        const t = setInterval(() => { if (conn !== 0 || n < 5) ws.send(`tick ${n++}`); }, 100);
        ws.on('close', () => clearInterval(t));
      });
    }));
  });
  after(() => { wss.clients.forEach((c) => c.terminate()); wss.close(); });

  it('pushes per connection per second, the gaps between them, and the connection that went silent', async () => {
    const r = await swarm(['--url', url, '--connections', '8', '--hold', '3s', '--subscribe', '{"op":"subscribe","conn":{{conn}}}',
      '--stall-after', '1s']).done;
    assert.equal(r.code, 0, r.stderr);
    const push = (r.summary!.profiles.idle as HealthySummary).push!;
    assert.ok(push.perConnectionPerSec! > 7 && push.perConnectionPerSec! <= 10.5, `${push.perConnectionPerSec}/s per connection for a 10/s server`);
    assert.ok(push.gapMs.p50! >= 90 && push.gapMs.p50! <= 130, `gap p50 ${push.gapMs.p50} ms`);
    assert.equal(push.stalled, 1, 'connection 0 went silent');
    assert.equal(push.stallAfterSec, 1);
    assert.match(r.stderr, /idle pushes\s+\d+ \([\d.]+\/s per connection\), gap p50/);
  });
});

describe('swarm protocol flag errors', () => {
  const U = ['--url', 'ws://127.0.0.1:1/'];
  const cases: [string, string[], RegExp][] = [
    ['json match without {{id}}', [...U, '--profile', 'chatty', '--send', 'hi', '--match', 'json:id'], /--match json:id finds the request by its id: put \{\{id\}\} in --send/],
    ['--send with --command', [...U, '--profile', 'chatty', '--send', 'hi', '--command', 'echo 3'], /--send replaces --command/],
    ['--expect without --send', [...U, '--profile', 'chatty', '--expect', 'json:a==b'], /--expect checks replies to --send/],
    ['an unknown placeholder', [...U, '--profile', 'chatty', '--send', 'x {{nope}}'], /--send: unknown placeholder "\{\{nope\}\}"/],
    ['a var without --vars', [...U, '--header', 'A: {{var:t}}'], /--header: \{\{var:t\}\} needs --vars FILE\.csv/],
    ['a bad match', [...U, '--profile', 'chatty', '--match', 'xml:id'], /--match: "xml:id" is not one of wslab, echo, next/],
    ['a regex without a group', [...U, '--profile', 'chatty', '--send', '{{id}}', '--match', 'regex:\\d+'], /needs a capture group/],
    ['Host as --header', [...U, '--header', 'Host: x'], /--header: Host cannot be set with --header: it comes from --url/],
    ['--ca on ws://', [...U, '--ca', '/etc/hostname'], /--ca applies to wss:\/\/ URLs only/],
    ['--subscribe on an attack', [...U, '--profile', 'slowloris', '--subscribe', 'x'], /--subscribe applies to idle or ping or chatty only/],
    ['bad hex', [...U, '--profile', 'chatty', '--send', 'hex:abc', '--match', 'echo'], /--send: "hex:abc" is not valid hex/],
    ['a missing @file', [...U, '--profile', 'chatty', '--send', '@/nonexistent/msg.json'], /--send: cannot read \/nonexistent\/msg\.json \(ENOENT\)/],
  ];
  it('each is one line on stderr and exit 1, before any connection', () => expectUsageErrors(swarm, cases));
});

describe('attacks speak the user\'s protocol', () => {
  let url: string;
  let wss: WebSocketServer;
  const got: string[] = [];
  let maxBuffered = 0;
  before(async () => {
    ({ wss, url } = await wsServer((ws) => {
      ws.on('message', (data) => {
        const text = String(data);
        got.push(text);
        if (text.startsWith('give ')) {
          ws.send(Buffer.alloc(256 * 1024, 0x61));
          maxBuffered = Math.max(maxBuffered, ws.bufferedAmount);
        }
      });
    }));
  });
  after(() => { wss.clients.forEach((c) => c.terminate()); wss.close(); });

  it('slow-reader --reader-send: the server gets the user\'s request and its large replies pile up unread', async () => {
    got.length = 0;
    const r = await swarm(['--url', url, '--connections', '4', '--profile', 'slow-reader', '--reader-send', 'give {{conn}}.{{seq}}',
      '--interval', '100ms', '--hold', '3s']).done;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(got.length >= 4 * 10, `${got.length} requests`);
    assert.ok(got.every((g) => /^give [0-3]\.\d+$/.test(g)), got.slice(0, 3).join(' | '));
    assert.ok(maxBuffered > 1024 * 1024, `the server buffered at most ${maxBuffered} bytes for a never-reading client`);
    const p = r.summary!.profiles['slow-reader'] as { bytesReceived: number; outcomes: { held: number } };
    assert.equal(p.outcomes.held, 4, 'ws has no send-buffer cap: every slow reader is still held');
  });

  it('slow-frame --send: the dribbled frame is the user\'s message, byte for byte', async () => {
    got.length = 0;
    const r = await swarm(['--url', url, '--connections', '2', '--profile', 'slow-frame', '--send', 'hi {{conn}}',
      '--dribble-interval', '50ms', '--hold', '1500ms']).done;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(got.length >= 2, `${got.length} messages completed`);
    assert.ok(got.every((g) => g === 'hi 0'), `the server got ${[...new Set(got)].join(', ')}`);
  });
});
