import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  FrameReader, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, UPGRADE_INVALID, UPGRADE_PARTIAL, UPGRADE_REJECTED,
  UpgradeRequest, checkUpgrade, deflateAccepted, encodeClose, encodeFrame, encodeText, newKey, upgradeFailure, type FrameSink,
} from '../../client/codec.js';
import { constants as zlib, deflateRawSync } from 'node:zlib';
import { ownDefaults } from '../../server/design.js';
import { SERVE_DEFAULTS } from '../../server/options.js';
import { DESIGNS } from '../../server/registry.js';
import { startServer, type Running } from '../../server/serve.js';

type Event =
  | { kind: 'message'; opcode: number; data: Buffer }
  | { kind: 'ping' | 'pong'; data: Buffer }
  | { kind: 'close'; code: number; reason: string }
  | { kind: 'fail'; code: number; detail: string };

/** Collects what a FrameReader reports for slot 0. */
class Recorder implements FrameSink {
  readonly events: Event[] = [];
  message(_s: number, opcode: number, d: Buffer, a: number, b: number): void { this.events.push({ kind: 'message', opcode, data: Buffer.from(d.subarray(a, b)) }); }
  ping(_s: number, d: Buffer, a: number, b: number): void { this.events.push({ kind: 'ping', data: Buffer.from(d.subarray(a, b)) }); }
  pong(_s: number, d: Buffer, a: number, b: number): void { this.events.push({ kind: 'pong', data: Buffer.from(d.subarray(a, b)) }); }
  close(_s: number, code: number, d: Buffer, a: number, b: number): void { this.events.push({ kind: 'close', code, reason: d.toString('utf8', a, b) }); }
  fail(_s: number, code: number, detail: string): void { this.events.push({ kind: 'fail', code, detail }); }
}

/** A server frame (unmasked unless asked). */
function serverFrame(opcode: number, payload: Buffer, { fin = true, mask = false, rsv = 0 } = {}): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext);
  head[0] = (fin ? 0x80 : 0) | rsv | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  return Buffer.concat([head, mask ? Buffer.alloc(4) : Buffer.alloc(0), payload]);
}

/** Unmasks one client frame; checks it is masked. */
function readClientFrame(buf: Buffer): { fin: boolean; opcode: number; mask: Buffer; payload: Buffer; size: number } {
  assert.equal(buf[1] & 0x80, 0x80, 'client frames are masked');
  const len7 = buf[1] & 0x7f;
  const [len, at] = len7 < 126 ? [len7, 2] : len7 === 126 ? [buf.readUInt16BE(2), 4] : [Number(buf.readBigUInt64BE(2)), 10];
  const mask = buf.subarray(at, at + 4);
  const payload = Buffer.from(buf.subarray(at + 4, at + 4 + len));
  for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
  return { fin: (buf[0] & 0x80) !== 0, opcode: buf[0] & 0x0f, mask: Buffer.from(mask), payload, size: at + 4 + len };
}

/**
 * The codec driven from a plain net.Socket: upgrade, then every read goes through the FrameReader; pings are
 * answered with pongs and a server close is echoed, as the swarm's pool does.
 */
class CodecClient implements FrameSink {
  readonly events: Event[] = [];
  readonly reader = new FrameReader(this);
  readonly keys = new Uint8Array(16);
  private waiters: (() => void)[] = [];
  readonly ended: Promise<void>;
  constructor(readonly socket: net.Socket) {
    this.ended = new Promise((r) => socket.once('close', () => r()));
    socket.on('error', () => undefined);
  }

  static async open(port: number, path = '/'): Promise<CodecClient> {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    await once(socket, 'connect');
    const c = new CodecClient(socket);
    newKey(c.keys, 0);
    socket.write(new UpgradeRequest(`127.0.0.1:${port}`, path).build(c.keys, 0));
    let head = Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        head = Buffer.concat([head, d]);
        const at = checkUpgrade(head, 0, head.length, c.keys, 0);
        if (at === UPGRADE_PARTIAL) return;
        socket.off('data', onData);
        if (at < 0) return reject(new Error(upgradeFailure(head, 0, head.length, c.keys, 0)));
        socket.on('data', (more: Buffer) => c.reader.feed(0, more, 0, more.length));
        if (at < head.length) c.reader.feed(0, head, at, head.length);
        resolve();
      };
      socket.on('data', onData);
    });
    return c;
  }

  message(_s: number, opcode: number, d: Buffer, a: number, b: number): void { this.push({ kind: 'message', opcode, data: Buffer.from(d.subarray(a, b)) }); }
  ping(_s: number, d: Buffer, a: number, b: number): void {
    this.socket.write(encodeFrame(OP_PONG, d, a, b));
    this.push({ kind: 'ping', data: Buffer.from(d.subarray(a, b)) });
  }
  pong(_s: number, d: Buffer, a: number, b: number): void { this.push({ kind: 'pong', data: Buffer.from(d.subarray(a, b)) }); }
  close(_s: number, code: number, d: Buffer, a: number, b: number): void { this.push({ kind: 'close', code, reason: d.toString('utf8', a, b) }); }
  fail(_s: number, code: number, detail: string): void { this.push({ kind: 'fail', code, detail }); }

  private push(e: Event): void {
    this.events.push(e);
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves with the next event (waiting at most 5 s). */
  async next(): Promise<Event> {
    const until = Date.now() + 5000;
    while (this.events.length === 0) {
      if (Date.now() > until) throw new Error('no event within 5 s');
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
    return this.events.shift()!;
  }

  async request(text: string): Promise<string> {
    this.socket.write(encodeText(text));
    const e = await this.next();
    assert.equal(e.kind, 'message');
    return (e as { data: Buffer }).data.toString();
  }
}

/** A raw TCP server whose per-connection behaviour is a test's function. */
async function rawServer(onSocket: (s: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => { sockets.add(s); s.on('error', () => undefined); onSocket(s); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => { for (const s of sockets) s.destroy(); server.close(); await once(server, 'close'); },
  };
}

/** Reads the upgrade request and answers 101 with the right (or a given wrong) accept key; then calls `then`. */
function acceptUpgrade(s: net.Socket, then: (s: net.Socket, rest: Buffer) => void, wrongAccept?: string): void {
  let buf = Buffer.alloc(0);
  const onData = (d: Buffer): void => {
    buf = Buffer.concat([buf, d]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    s.off('data', onData);
    const key = /sec-websocket-key:\s*(\S+)/i.exec(buf.subarray(0, end).toString())![1];
    const accept = wrongAccept ?? createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    then(s, buf.subarray(end + 4));
  };
  s.on('data', onData);
}

describe('codec: frames without a socket', () => {
  it('encodes masked client frames with 7-, 16- and 64-bit lengths and a fresh mask each time', () => {
    for (const len of [0, 1, 125, 126, 65535, 65536, 70000]) {
      const payload = Buffer.alloc(len, 0x61);
      const f = readClientFrame(encodeFrame(OP_BINARY, payload));
      assert.equal(f.opcode, OP_BINARY);
      assert.equal(f.fin, true);
      assert.equal(f.payload.length, len);
      assert.ok(f.payload.equals(payload));
    }
    const masks = new Set(Array.from({ length: 50 }, () => readClientFrame(encodeText('x')).mask.toString('hex')));
    assert.ok(masks.size >= 45, `masks repeat too often: ${masks.size} distinct of 50`);
    const close = readClientFrame(encodeClose(1000, 'bye'));
    assert.equal(close.opcode, OP_CLOSE);
    assert.equal(close.payload.readUInt16BE(0), 1000);
    assert.equal(close.payload.subarray(2).toString(), 'bye');
    assert.equal(readClientFrame(encodeClose(1005)).payload.length, 0);
  });

  it('parses 7/16/64-bit lengths, fed one byte at a time', () => {
    const r = new Recorder();
    const reader = new FrameReader(r);
    const sizes = [5, 300, 70_000];
    const bytes = Buffer.concat(sizes.map((n) => serverFrame(OP_BINARY, Buffer.alloc(n, 0x62))));
    for (let i = 0; i < bytes.length; i += 1 + (i > 1000 ? 997 : 0)) reader.feed(0, bytes, i, Math.min(bytes.length, i + 1 + (i > 1000 ? 997 : 0)));
    assert.deepEqual(r.events.map((e) => (e.kind === 'message' ? e.data.length : e.kind)), sizes);
    assert.equal(reader.partial, 0);
  });

  it('reassembles a fragmented message with control frames between the fragments', () => {
    const r = new Recorder();
    const reader = new FrameReader(r);
    const bytes = Buffer.concat([
      serverFrame(OP_TEXT, Buffer.from('hel'), { fin: false }),
      serverFrame(OP_PING, Buffer.from('p1')),
      serverFrame(0, Buffer.from('lo '), { fin: false }),
      serverFrame(OP_PONG, Buffer.from('p2')),
      serverFrame(0, Buffer.from('wörld')),
    ]);
    reader.feed(0, bytes, 0, bytes.length);
    assert.deepEqual(r.events.map((e) => e.kind), ['ping', 'pong', 'message']);
    assert.equal((r.events[2] as { data: Buffer }).data.toString(), 'hello wörld');
  });

  it('fails the connection on protocol violations with the right close code', () => {
    const cases: [Buffer, number][] = [
      [serverFrame(OP_TEXT, Buffer.from('x'), { mask: true }), 1002],
      [serverFrame(OP_TEXT, Buffer.from('x'), { rsv: 0x40 }), 1002],
      [serverFrame(0x3, Buffer.from('x')), 1002],
      [serverFrame(0, Buffer.from('x')), 1002],
      [serverFrame(OP_PING, Buffer.alloc(126)), 1002],
      [serverFrame(OP_PING, Buffer.from('x'), { fin: false }), 1002],
      [serverFrame(OP_TEXT, Buffer.from([0xc3, 0x28])), 1007],
      [Buffer.concat([serverFrame(OP_TEXT, Buffer.from('a'), { fin: false }), serverFrame(OP_TEXT, Buffer.from('b'))]), 1002],
      [serverFrame(OP_CLOSE, Buffer.from([0x03, 0xe7])), 1002], // 999
    ];
    for (const [bytes, code] of cases) {
      const r = new Recorder();
      new FrameReader(r).feed(0, bytes, 0, bytes.length);
      assert.equal(r.events.at(-1)?.kind, 'fail', bytes.toString('hex'));
      assert.equal((r.events.at(-1) as { code: number }).code, code, bytes.toString('hex'));
    }
    const r = new Recorder();
    const big = serverFrame(OP_BINARY, Buffer.alloc(2000));
    new FrameReader(r, 1000).feed(0, big, 0, 100);
    assert.equal((r.events[0] as { code: number }).code, 1009);
  });

  it('checks the upgrade response: partial, rejected, wrong accept key', () => {
    const keys = new Uint8Array(16);
    newKey(keys, 0);
    const key = Buffer.from(keys).toString('base64');
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    const ok = Buffer.concat([
      Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`),
      Buffer.from([0x81, 0x00]), // a frame in the same read
    ]);
    assert.equal(checkUpgrade(ok, 0, ok.length, keys, 0), ok.length - 2);
    assert.equal(checkUpgrade(ok, 0, 20, keys, 0), UPGRADE_PARTIAL);
    const denied = Buffer.from('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
    assert.equal(checkUpgrade(denied, 0, denied.length, keys, 0), UPGRADE_REJECTED);
    const wrong = Buffer.from(ok.toString('latin1').replace(accept, 'AAAAAAAAAAAAAAAAAAAAAAAAAAA='), 'latin1');
    assert.equal(checkUpgrade(wrong, 0, wrong.length, keys, 0), UPGRADE_INVALID);
    assert.match(upgradeFailure(wrong, 0, wrong.length, keys, 0), /Sec-WebSocket-Accept/);
    // RFC 6455 §4.1: the subprotocol the server picks must be one offered; one not asked for fails too
    const chose = (p: string): Buffer => Buffer.from(ok.toString('latin1').replace('\r\n\r\n', `\r\nSec-WebSocket-Protocol: ${p}\r\n\r\n`), 'latin1');
    assert.equal(checkUpgrade(chose('chat.v2'), 0, chose('chat.v2').length, keys, 0, ['chat.v1', 'chat.v2']), chose('chat.v2').length - 2);
    assert.equal(checkUpgrade(chose('chat.v9'), 0, chose('chat.v9').length, keys, 0, ['chat.v1']), UPGRADE_INVALID);
    assert.match(upgradeFailure(chose('chat.v9'), 0, chose('chat.v9').length, keys, 0, ['chat.v1']), /chose subprotocol "chat\.v9", not one of chat\.v1/);
    assert.equal(checkUpgrade(chose('x'), 0, chose('x').length, keys, 0), UPGRADE_INVALID);
    assert.equal(checkUpgrade(ok, 0, ok.length, keys, 0, ['chat.v1']), UPGRADE_INVALID);
  });

  it('permessage-deflate: inflates compressed messages (whole or fragmented) only where it was negotiated', () => {
    // RFC 7692 §7.2.1: the sender compresses with a sync flush and strips its trailing 00 00 ff ff
    const compress = (text: string): Buffer => { const z = deflateRawSync(Buffer.from(text), { finishFlush: zlib.Z_SYNC_FLUSH }); return z.subarray(0, z.length - 4); };
    const text = 'hello hello hello wörld '.repeat(40);
    const z = compress(text);
    assert.ok(z.length < text.length / 4, `compressed to ${z.length}`);
    const r = new Recorder();
    const reader = new FrameReader(r, undefined, Uint8Array.of(1, 0));
    const bytes = Buffer.concat([
      serverFrame(OP_TEXT, z, { rsv: 0x40 }),
      serverFrame(OP_TEXT, z.subarray(0, 7), { rsv: 0x40, fin: false }), serverFrame(OP_PING, Buffer.from('p')), serverFrame(0, z.subarray(7)),
      serverFrame(OP_TEXT, Buffer.from('plain')),
    ]);
    for (let i = 0; i < bytes.length; i += 5) reader.feed(0, bytes, i, Math.min(bytes.length, i + 5));
    assert.deepEqual(r.events.map((e) => (e.kind === 'message' ? e.data.toString() : e.kind)), [text, 'ping', text, 'plain']);
    const fails: [Buffer, number, number, RegExp][] = [
      [serverFrame(OP_TEXT, z, { rsv: 0x40 }), 1, 1002, /reserved bits/], // slot 1 did not negotiate it
      [serverFrame(OP_PING, Buffer.from('p'), { rsv: 0x40 }), 0, 1002, /RSV1 on a control frame/],
      [Buffer.concat([serverFrame(OP_TEXT, z.subarray(0, 7), { rsv: 0x40, fin: false }), serverFrame(0, z.subarray(7), { rsv: 0x40 })]), 0, 1002, /RSV1 on a continuation/],
      [serverFrame(OP_TEXT, z, { rsv: 0x20 }), 0, 1002, /reserved bits/], // RSV2: no extension gives it
      [serverFrame(OP_TEXT, Buffer.from([0xff, 0xff, 0xff]), { rsv: 0x40 }), 0, 1007, /does not inflate/],
    ];
    for (const [frame, slot, code, why] of fails) {
      const f = new Recorder();
      new FrameReader(f, undefined, Uint8Array.of(1, 0)).feed(slot, frame, 0, frame.length);
      assert.deepEqual([f.events.at(-1)?.kind, (f.events.at(-1) as { code: number }).code], ['fail', code], frame.toString('hex'));
      assert.match((f.events.at(-1) as { detail: string }).detail, why);
    }
    // a bomb: 1 MiB of zeros in ≈1 KiB inflates past a 64 KiB limit: 1009, without inflating it all
    const bomb = compress('\0'.repeat(1024 * 1024));
    const b = new Recorder();
    new FrameReader(b, 64 * 1024, Uint8Array.of(1)).feed(0, serverFrame(OP_BINARY, bomb, { rsv: 0x40 }), 0, bomb.length + 4);
    assert.equal((b.events.at(-1) as { code: number }).code, 1009);
  });

  it('checks the extension the 101 accepted against the offer (none, or permessage-deflate as offered)', () => {
    const keys = new Uint8Array(16);
    newKey(keys, 0);
    const accept = createHash('sha1').update(`${Buffer.from(keys).toString('base64')}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    const head = (ext: string): Buffer => Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Accept: ${accept}\r\n${ext ? `Sec-WebSocket-Extensions: ${ext}\r\n` : ''}\r\n`, 'latin1');
    const cases: [string, boolean, RegExp | null][] = [
      ['', true, null],
      ['', false, null],
      ['permessage-deflate; server_no_context_takeover; client_no_context_takeover', true, null],
      ['permessage-deflate; server_no_context_takeover; server_max_window_bits=10', true, null],
      ['permessage-deflate; server_no_context_takeover', false, /chose extension .* though none was offered/],
      ['permessage-deflate', true, /without server_no_context_takeover/],
      ['permessage-deflate; server_no_context_takeover; client_max_window_bits=9', true, /client_max_window_bits/],
      ['x-webkit-deflate-frame', true, /chose extension "x-webkit-deflate-frame", not the permessage-deflate offered/],
      ['permessage-deflate; server_no_context_takeover, permessage-deflate', true, /several extensions/],
    ];
    for (const [ext, offered, problem] of cases) {
      const h = head(ext);
      const at = checkUpgrade(h, 0, h.length, keys, 0, [], offered);
      if (problem === null) {
        assert.equal(at, h.length, ext);
        assert.equal(deflateAccepted(h, 0, at), ext !== '', ext);
      } else {
        assert.equal(at, UPGRADE_INVALID, ext);
        assert.match(upgradeFailure(h, 0, h.length, keys, 0, [], offered), problem);
      }
    }
  });

  it('builds the upgrade request with extra header lines, fixed and per connection', () => {
    const keys = new Uint8Array(16);
    const req = new UpgradeRequest('h:1', '/p', 'Origin: o\r\n', (conn) => `X-Conn: ${conn}\r\n`).build(keys, 0, 7).toString('latin1');
    assert.equal(req, 'GET /p HTTP/1.1\r\nHost: h:1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nOrigin: o\r\n' +
      `Sec-WebSocket-Key: ${Buffer.from(keys).toString('base64')}\r\nX-Conn: 7\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
});

for (const design of ['ws', 'uws']) {
  describe(`codec against the ${design} design`, () => {
    let server: Running;
    let port: number;
    before(async () => {
      server = await startServer({ ...SERVE_DEFAULTS, design, own: ownDefaults(DESIGNS.get(design)!), port: 0, metricsPort: 0 });
      port = server.handle.port;
    });
    after(async () => { await server?.close(); });

    it('completes the handshake and round-trips masked text and binary frames', async () => {
      const c = await CodecClient.open(port);
      assert.equal(await c.request('1 echo hello'), '1 ok hello');
      assert.equal(await c.request('2 echo wörld'), '2 ok wörld');
      c.socket.write(encodeFrame(OP_BINARY, Buffer.from([0, 1, 2, 255])));
      const e = await c.next();
      assert.deepEqual(e.kind === 'message' && [e.opcode, [...e.data]], [OP_BINARY, [0, 1, 2, 255]]);
      c.socket.destroy();
    });

    it('receives 16- and 64-bit length replies whole', async () => {
      const c = await CodecClient.open(port);
      assert.equal(await c.request('3 fill 300'), `3 ok ${'x'.repeat(300)}`);
      assert.equal(await c.request('4 fill 100000'), `4 ok ${'x'.repeat(100_000)}`);
      assert.equal(c.reader.partial, 0);
      c.socket.destroy();
    });

    it('gets a pong carrying the ping payload', async () => {
      const c = await CodecClient.open(port);
      c.socket.write(encodeFrame(OP_PING, Buffer.from('12345')));
      const e = await c.next();
      assert.deepEqual(e.kind === 'pong' && e.data.toString(), '12345');
      c.socket.destroy();
    });

    it('closes with 1000: the server echoes 1000 and ends TCP', async () => {
      const c = await CodecClient.open(port);
      c.socket.write(encodeClose(1000));
      const e = await c.next();
      assert.deepEqual(e.kind === 'close' && e.code, 1000);
      await c.ended;
    });
  });
}

describe('codec against raw servers', () => {
  it('detects a wrong Sec-WebSocket-Accept', async () => {
    const srv = await rawServer((s) => acceptUpgrade(s, () => undefined, 'dGhpcyBpcyB3cm9uZw=='));
    await assert.rejects(CodecClient.open(srv.port), /Sec-WebSocket-Accept is "dGhpcyBpcyB3cm9uZw==", expected/);
    await srv.close();
  });

  it('sends masked frames with random masks that a server can unmask', async () => {
    const got: Buffer[] = [];
    const srv = await rawServer((s) => acceptUpgrade(s, (sock) => sock.on('data', (d: Buffer) => got.push(d))));
    const c = await CodecClient.open(srv.port);
    c.socket.write(encodeText('one'));
    c.socket.write(encodeText('two'));
    await new Promise((r) => setTimeout(r, 100));
    const all = Buffer.concat(got);
    const a = readClientFrame(all);
    const b = readClientFrame(all.subarray(a.size));
    assert.deepEqual([a.opcode, a.payload.toString(), b.payload.toString()], [OP_TEXT, 'one', 'two']);
    assert.notDeepEqual(a.mask, b.mask);
    c.socket.destroy();
    await srv.close();
  });

  it('reassembles a fragmented server message split across TCP writes, answering the ping in between', async () => {
    const fromClient: Buffer[] = [];
    const srv = await rawServer((s) => acceptUpgrade(s, async (sock) => {
      sock.on('data', (d: Buffer) => fromClient.push(d));
      const bytes = Buffer.concat([
        serverFrame(OP_TEXT, Buffer.from('7 ok frag'), { fin: false }),
        serverFrame(OP_PING, Buffer.from('mid')),
        serverFrame(0, Buffer.alloc(300, 0x79), { fin: false }),
        serverFrame(0, Buffer.from('end')),
      ]);
      for (let i = 0; i < bytes.length; i += 7) { // 7-byte TCP writes: headers split across reads
        sock.write(bytes.subarray(i, i + 7));
        await new Promise((r) => setImmediate(r));
      }
    }));
    const c = await CodecClient.open(srv.port);
    assert.deepEqual((await c.next()).kind, 'ping');
    const m = await c.next();
    assert.equal(m.kind === 'message' && m.data.toString(), `7 ok frag${'y'.repeat(300)}end`);
    await new Promise((r) => setTimeout(r, 50));
    const pong = readClientFrame(Buffer.concat(fromClient));
    assert.deepEqual([pong.opcode, pong.payload.toString()], [OP_PONG, 'mid']);
    c.socket.destroy();
    await srv.close();
  });

  it('reports a server-initiated close with its code and reason', async () => {
    const srv = await rawServer((s) => acceptUpgrade(s, (sock) => {
      const p = Buffer.alloc(2 + 12);
      p.writeUInt16BE(1001, 0);
      p.write('going away!!', 2);
      sock.write(serverFrame(OP_CLOSE, p));
    }));
    const c = await CodecClient.open(srv.port);
    assert.deepEqual(await c.next(), { kind: 'close', code: 1001, reason: 'going away!!' });
    c.socket.destroy();
    await srv.close();
  });
});
