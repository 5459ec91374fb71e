/**
 * Randomised frame fuzz of the native `threads` server over raw TCP sockets (no client library): valid traffic —
 * pipelined, fragmented, with interleaved pings and non-minimal length encodings — mixed with malformed frames and
 * random garbage. A reference model below (`simulate`) predicts, for any byte stream, the exact frames the server must
 * send back and how the connection must end (close code, or TCP end after an incomplete frame); the test checks every
 * byte of that, then checks the server's counters against the totals.
 *
 * Reproduce a run with WSLAB_FUZZ_SEED=<seed printed on failure>. Run against the AddressSanitizer build: see
 * native/README.md (WSLAB_THREADS_ADDON + LD_PRELOAD of libasan).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { startThreadsServer, type ThreadsServer } from '../../server/threads/addon.js';

const MAX_PAYLOAD = 100_000;
const FRAME_TARGET = 100_000;
const WORKERS = 8;
const READ_TIMEOUT_MS = 10_000;

// ---- seeded randomness ---------------------------------------------------------------------------------------------

const SEED = Number(process.env.WSLAB_FUZZ_SEED ?? randomBytes(4).readUInt32LE(0));
// Each worker has its own generator state, swapped in around its synchronous generation steps, so that a seed
// replays the same bytes on every connection however the workers interleave.
let rngState = 1;
interface Rng { state: number }
const rngFor = (worker: number): Rng => ({ state: (SEED + Math.imul(worker + 1, 0x9e3779b9)) >>> 0 || 1 });
function withRng<T>(r: Rng, f: () => T): T {
  const saved = rngState;
  rngState = r.state;
  try { return f(); } finally { r.state = rngState; rngState = saved; }
}
function rand(): number { // mulberry32
  rngState = (rngState + 0x6d2b79f5) >>> 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const chance = (p: number): boolean => rand() < p;
const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
const bytes = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(0, 255);
  return b;
};

// ---- client frames --------------------------------------------------------------------------------------------------

interface FrameSpec {
  opcode: number;
  payload?: Buffer;
  fin?: boolean;
  rsv?: number;          // 0..7
  masked?: boolean;
  lenForm?: 7 | 16 | 64; // default: minimal
  declared?: bigint;     // length field to write instead of payload.length
  key?: Buffer;
}

/** A client frame: masked unless told otherwise, with any length form or a lying length field. */
function frame(f: FrameSpec): Buffer {
  const payload = f.payload ?? Buffer.alloc(0);
  const len = f.declared ?? BigInt(payload.length);
  const form = f.lenForm ?? (len < 126n ? 7 : len <= 0xffffn ? 16 : 64);
  const masked = f.masked ?? true;
  const head = [((f.fin ?? true) ? 0x80 : 0) | ((f.rsv ?? 0) << 4) | f.opcode];
  const m = masked ? 0x80 : 0;
  if (form === 7) head.push(m | Number(len));
  else if (form === 16) head.push(m | 126, Number(len >> 8n) & 0xff, Number(len) & 0xff);
  else {
    head.push(m | 127);
    for (let i = 7; i >= 0; i--) head.push(Number((len >> BigInt(8 * i)) & 0xffn));
  }
  if (!masked) return Buffer.concat([Buffer.from(head), payload]);
  const key = f.key ?? bytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([Buffer.from(head), key, body]);
}

const closePayload = (code: number, reason: Buffer = Buffer.alloc(0)): Buffer =>
  Buffer.concat([Buffer.from([code >> 8, code & 0xff]), reason]);

// ---- reference model of the server ----------------------------------------------------------------------------------

interface Expected { opcode: number; exact: Buffer }
type Ending = { close: number; normal: boolean } | 'open';
interface Outcome { expect: Expected[]; end: Ending; frames: number; messages: number; payloadBytes: number }

const CLOSE_OK = (c: number): boolean => (c >= 1000 && c <= 1014 && c !== 1004 && c !== 1005 && c !== 1006) ||
  (c >= 3000 && c <= 4999);

function cpu(n: number): string {
  let x = (0x9e3779b9 ^ n) >>> 0;
  for (let i = 0; i < n * 1000; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
  }
  return x.toString(16).padStart(8, '0');
}

/** docs/protocol.md for one text request, byte for byte as server/protocol.ts answers it (ids may hold any UTF-8). */
function reply(req: Buffer): Expected {
  const text = (s: string | Buffer, ...more: (string | Buffer)[]): Expected =>
    ({ opcode: 1, exact: Buffer.concat([s, ...more].map((x) => (typeof x === 'string' ? Buffer.from(x) : x))) });
  const sp = req.indexOf(0x20);
  const id = sp < 0 ? req : req.subarray(0, sp);
  if (id.length === 0 || id.length > 32) return text('- err bad_request missing or oversized request id');
  if (sp < 0) return text(id, ' err unknown_command missing command');
  const rest = req.subarray(sp + 1);
  const sp2 = rest.indexOf(0x20);
  const verb = (sp2 < 0 ? rest : rest.subarray(0, sp2)).toString('utf8');
  const arg = sp2 < 0 ? '' : rest.subarray(sp2 + 1).toString('latin1');
  const num = (max: number): number | undefined => (/^[0-9]{1,9}$/.test(arg) && Number(arg) <= max ? Number(arg) : undefined);
  const run = (max: number, result: (n: number) => string): Expected => {
    const n = num(max);
    return n === undefined ? text(id, ` err bad_argument ${verb} takes an integer 0-${max}`) : text(id, ' ok ', result(n));
  };
  switch (verb) {
    case 'echo': return text(id, ' ok ', sp2 < 0 ? Buffer.alloc(0) : rest.subarray(sp2 + 1));
    case 'wait': case 'block': return run(60000, String);
    case 'cpu': return run(1000000, cpu);
    case 'fill': return run(8388608, (n) => 'x'.repeat(n));
    default: return text(id, ' err unknown_command ', verb.slice(0, 32)); // a split surrogate pair encodes as U+FFFD
  }
}

/**
 * What the server must answer to `stream` (all bytes a client sent on one connection, after the handshake), mirroring
 * native/src/connection.cc check for check and in the same order: first two bytes, then the whole header incl. the
 * mask key, the 64-bit length's top bit, continuation rules, the size limit on the declared length, then the payload
 * (text validated fail-fast, fragment by fragment).
 */
function simulate(stream: Buffer, maxPayload: number): Outcome {
  const out: Outcome = { expect: [], end: 'open', frames: 0, messages: 0, payloadBytes: 0 };
  const fail = (close: number): Outcome => ({ ...out, end: { close, normal: false } });
  let pos = 0;
  let msg: { opcode: number; parts: Buffer[]; size: number; utf8: TextDecoder } | undefined;
  for (;;) {
    if (stream.length - pos < 2) return out;
    const b0 = stream[pos]!, b1 = stream[pos + 1]!;
    const fin = (b0 & 0x80) !== 0, rsv = (b0 >> 4) & 7, op = b0 & 0x0f, masked = (b1 & 0x80) !== 0, len7 = b1 & 0x7f;
    const control = op >= 8;
    out.frames++;
    if (rsv !== 0 || !masked || ![0, 1, 2, 8, 9, 10].includes(op) || (control && (!fin || len7 > 125))) return fail(1002);
    const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    if (stream.length - pos < 2 + ext + 4) return out;
    let len = BigInt(len7);
    if (ext === 2) len = BigInt(stream.readUInt16BE(pos + 2));
    if (ext === 8) {
      if (stream[pos + 2]! & 0x80) return fail(1002);
      len = stream.readBigUInt64BE(pos + 2);
    }
    const key = stream.subarray(pos + 2 + ext, pos + 6 + ext);
    const start = pos + 6 + ext;
    const unmasked = (n: number): Buffer => {
      const p = Buffer.from(stream.subarray(start, start + n));
      for (let i = 0; i < n; i++) p[i]! ^= key[i & 3]!;
      return p;
    };
    if (control) {
      const n = Number(len);
      if (stream.length - start < n) return out;
      const p = unmasked(n);
      pos = start + n;
      if (op === 9) out.expect.push({ opcode: 10, exact: p });
      if (op !== 8) continue;
      if (n === 1) return fail(1002);
      const code = n >= 2 ? p.readUInt16BE(0) : 1000;
      if (n >= 2 && !CLOSE_OK(code)) return fail(1002);
      try { new TextDecoder('utf-8', { fatal: true }).decode(p.subarray(2)); } catch { return fail(1007); }
      return { ...out, end: { close: code, normal: true } };
    }
    if (op === 0 && !msg) return fail(1002);
    if (op !== 0 && msg) return fail(1002);
    msg ??= { opcode: op, parts: [], size: 0, utf8: new TextDecoder('utf-8', { fatal: true }) };
    if (len > BigInt(maxPayload - msg.size)) return fail(1009);
    const n = Number(len);
    if (stream.length - start < n) return out;
    const p = unmasked(n);
    pos = start + n;
    msg.parts.push(p);
    msg.size += n;
    if (msg.opcode === 1) {
      try { msg.utf8.decode(p, { stream: true }); } catch { return fail(1007); }
    }
    if (!fin) continue;
    if (msg.opcode === 1) {
      try { msg.utf8.decode(); } catch { return fail(1007); }
    }
    const body = Buffer.concat(msg.parts);
    out.messages++;
    out.payloadBytes += body.length;
    out.expect.push(msg.opcode === 2 ? { opcode: 2, exact: body } : reply(body));
    msg = undefined;
  }
}

// ---- generators -----------------------------------------------------------------------------------------------------

function utf8Text(maxLen: number): Buffer {
  const parts: string[] = [];
  const n = int(0, maxLen);
  for (let i = 0; i < n; i++) {
    parts.push(pick(['a', 'z', '0', ' ', '~', 'é', 'ß', '€', '中', '😀', '\u0000', '\u{10FFFF}', '\uFFFD']));
  }
  return Buffer.from(parts.join(''));
}

function request(): Buffer {
  const id = chance(0.05) ? pick(['', ' ', 'x'.repeat(33), '\u00e9'.repeat(17)]) : String(int(0, 1e9));
  const verbs: (() => string | Buffer)[] = [
    () => Buffer.concat([Buffer.from(`${id} echo `), utf8Text(chance(0.01) ? 3000 : 40)]),
    () => `${id} echo`,
    () => `${id} cpu ${pick([0, 1, 2, 5, 20])}`,
    () => `${id} ${pick(['wait', 'block'])} ${pick(['0', '1', '00'])}`,
    () => `${id} fill ${pick([0, 1, 125, 126, 4000])}`,
    () => {
      const [verb, over] = pick([['wait', '60001'], ['block', '60001'], ['cpu', '1000001'], ['fill', '8388609']] as const);
      return `${id} ${verb} ${pick(['', '-1', '1e3', ' 5', '5 ', '99999999999', '0000000001', '000000001', over, 'x'])}`;
    },
    () => `${id} ${pick(['ECHO', 'sleep', '', 'echo\u00e9', 'v'.repeat(31) + '\u{1F600}', 'v'.repeat(30) + '\u{1F600}', '\u00e9'.repeat(40), '\u4e2d'.repeat(33)])} 1`,
    () => id,
  ];
  const r = pick(verbs)();
  return typeof r === 'string' ? Buffer.from(r) : r;
}

function lenForm(n: number): 7 | 16 | 64 | undefined {
  if (!chance(0.05)) return undefined; // minimal, usually; non-minimal forms are accepted (as by ws and uWS)
  return n < 126 ? pick([16, 64] as const) : n <= 0xffff ? 64 : undefined;
}

/** One valid data message, maybe fragmented with pings (and unsolicited pongs) between its fragments. */
function message(): Buffer[] {
  const binary = chance(0.15);
  const payload = binary ? bytes(chance(0.002) ? int(65536, 70000) : int(0, 200)) : request();
  const pieces = chance(0.2) ? int(2, 4) : 1;
  const cuts = Array.from({ length: pieces - 1 }, () => int(0, payload.length)).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; i < pieces; i++) {
    const end = i === pieces - 1 ? payload.length : cuts[i]!;
    const p = payload.subarray(at, end);
    at = end;
    out.push(frame({ opcode: i === 0 ? (binary ? 2 : 1) : 0, fin: i === pieces - 1, payload: p, lenForm: lenForm(p.length) }));
    if (i < pieces - 1 && chance(0.3)) out.push(frame({ opcode: chance(0.8) ? 9 : 10, payload: bytes(int(0, 125)) }));
  }
  return out;
}

/** One malformed thing; the model decides what it must cause. */
function malformed(): Buffer[] {
  const gens: (() => Buffer[])[] = [
    () => [frame({ opcode: pick([1, 2, 9]), payload: utf8Text(10), masked: false })],
    () => [frame({ opcode: pick([0, 1, 2, 8, 9, 10]), payload: bytes(3), rsv: int(1, 7) })],
    () => [frame({ opcode: pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), payload: bytes(int(0, 10)) })],
    () => [frame({ opcode: pick([8, 9, 10]), payload: bytes(int(0, 10)), fin: false })],
    () => [frame({ opcode: pick([8, 9, 10]), payload: bytes(int(126, 300)) })],
    () => [frame({ opcode: 9, payload: bytes(int(0, 125)), lenForm: pick([16, 64] as const) })],
    () => [frame({ opcode: 0, payload: Buffer.from('1 echo x') })],
    () => [frame({ opcode: 1, fin: false, payload: Buffer.from('1 ec') }), frame({ opcode: pick([1, 2]), payload: bytes(3) })],
    () => [frame({ opcode: pick([1, 2]), lenForm: 64, declared: (1n << 63n) | BigInt(int(0, 1000)) })],
    () => [frame({ opcode: pick([1, 2]), lenForm: 64, declared: BigInt(int(MAX_PAYLOAD + 1, 2 ** 40)) })],
    () => [frame({ opcode: pick([1, 2]), lenForm: 64, declared: (1n << 62n) + BigInt(int(0, 1e6)) })],
    () => [frame({ opcode: 2, fin: false, payload: bytes(MAX_PAYLOAD - 10) }), frame({ opcode: 0, payload: bytes(11) })],
    () => [frame({ opcode: 1, payload: Buffer.concat([Buffer.from('1 echo '), pick(INVALID_UTF8)]) })],
    () => { // invalid only across the fragment boundary, or left incomplete at the end
      const bad = pick(INVALID_UTF8), cut = int(0, bad.length);
      return [frame({ opcode: 1, fin: false, payload: Buffer.concat([Buffer.from('1 echo '), bad.subarray(0, cut)]) }),
        frame({ opcode: 0, payload: bad.subarray(cut) })];
    },
    () => [frame({ opcode: 1, fin: false, payload: Buffer.from('1 echo \xe2\x82', 'latin1') }), frame({ opcode: 0, payload: Buffer.alloc(0) })],
    () => [frame({ opcode: 8, payload: bytes(1) })],
    () => [frame({ opcode: 8, payload: closePayload(pick([0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])) })],
    () => [frame({ opcode: 8, payload: closePayload(pick([1000, 1001, 3000, 4999]), pick(INVALID_UTF8)) })],
    () => [frame({ opcode: 8, payload: closePayload(pick([1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4000, 4999]), utf8Text(20).subarray(0, 100)) })],
    () => [frame({ opcode: 8 })],
    () => { const f = frame({ opcode: pick([1, 2, 8, 9]), payload: bytes(int(1, 300)).subarray(0, 125) }); return [f.subarray(0, int(1, f.length - 1))]; },
    () => [bytes(int(1, 64))],
  ];
  const out = pick(gens)();
  if (chance(0.2)) out.push(bytes(int(1, 200))); // trailing junk after the violation
  return out;
}

const INVALID_UTF8 = [
  [0xff], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf0, 0x80, 0x80, 0x80],
  [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0x80], [0xce, 0x41], [0xe2, 0x82, 0x41], [0xf0, 0x9f, 0x98],
].map((b) => Buffer.from(b));

// ---- raw client -----------------------------------------------------------------------------------------------------

interface ServerFrame { fin: boolean; opcode: number; payload: Buffer }

class RawClient {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => { this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d; this.notify(); });
    socket.on('close', () => { this.closed = true; this.notify(); });
    socket.on('error', () => {}); // a reset after our close is fine; what matters is what we read before it
  }

  static async open(port: number): Promise<RawClient> {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    await new Promise<void>((ok, ko) => socket.once('connect', ok).once('error', ko));
    const c = new RawClient(socket);
    const key = randomBytes(16).toString('base64');
    socket.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    const head = await c.until(() => {
      const end = c.buf.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const h = c.buf.subarray(0, end).toString('latin1');
      c.buf = c.buf.subarray(end + 4);
      return h;
    }, 'the 101 response');
    const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.match(head, new RegExp(`\r\nSec-WebSocket-Accept: ${accept.replace(/[+/]/g, '\\$&')}(\r\n|$)`, 'i'));
    return c;
  }

  private notify(): void { const w = this.wake; this.wake = undefined; w?.(); }

  private async until<T>(take: () => T | undefined, what: string): Promise<T> {
    const deadline = Date.now() + READ_TIMEOUT_MS;
    for (;;) {
      const v = take();
      if (v !== undefined) return v;
      if (this.closed) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((ok) => {
        const t = setTimeout(ok, left);
        this.wake = () => { clearTimeout(t); ok(); };
      });
    }
  }

  /** The next server frame; server frames must be unmasked with RSV 0. */
  frame(what = 'a frame'): Promise<ServerFrame> {
    return this.until(() => {
      const b = this.buf;
      if (b.length < 2) return undefined;
      assert.equal(b[1]! & 0x80, 0, 'server frames are not masked');
      assert.equal(b[0]! & 0x70, 0, 'server frames have RSV 0');
      const len7 = b[1]! & 0x7f, ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      if (b.length < 2 + ext) return undefined;
      const len = ext === 2 ? b.readUInt16BE(2) : ext === 8 ? Number(b.readBigUInt64BE(2)) : len7;
      if (b.length < 2 + ext + len) return undefined;
      this.buf = b.subarray(2 + ext + len);
      return { fin: (b[0]! & 0x80) !== 0, opcode: b[0]! & 0x0f, payload: b.subarray(2 + ext, 2 + ext + len) };
    }, what);
  }

  /** Resolves once the server has ended the TCP connection (we half-close first). */
  async ended(): Promise<Buffer> {
    await this.until(() => (this.closed ? true : undefined), 'the server to close the connection');
    return this.buf;
  }
}

// ---- the test -------------------------------------------------------------------------------------------------------

interface Totals { frames: number; messages: number; payloadBytes: number; normal: number; protocolError: number; tooBig: number; error: number; cases: Record<string, number> }

async function checkOutcome(c: RawClient, o: Outcome, label: string): Promise<void> {
  for (const [i, e] of o.expect.entries()) {
    const f = await c.frame(`reply ${i + 1}/${o.expect.length} (${label})`);
    assert.equal(f.fin, true, 'replies are single unfragmented frames');
    assert.equal(f.opcode, e.opcode, `${label}: reply ${i} opcode`);
    assert.ok(f.payload.equals(e.exact), `${label}: reply ${i} ${JSON.stringify(f.payload.subarray(0, 80).toString())} != ${JSON.stringify(e.exact.subarray(0, 80).toString())}`);
  }
  if (o.end === 'open') return;
  const f = await c.frame(`close ${o.end.close} (${label})`);
  assert.equal(f.opcode, 8, `${label}: expected a close frame, got opcode ${f.opcode} ${f.payload.subarray(0, 60)}`);
  assert.equal(f.payload.length, 2, `${label}: close frame with a status code only`);
  assert.equal(f.payload.readUInt16BE(0), o.end.close, `${label}: close code`);
  c.socket.end();
  const rest = await c.ended();
  assert.equal(rest.length, 0, `${label}: nothing after the close frame`);
}

/** One connection: a few pipelined batches of valid traffic, then maybe something malformed, then the end. */
async function oneConnection(port: number, rng: Rng, t: Totals): Promise<number> {
  const c = await RawClient.open(port);
  const sent: Buffer[] = [];
  let consumed = 0, frames = 0;
  const batches = withRng(rng, () => int(1, 4));
  for (let b = 0; b < batches; b++) {
    const last = b === batches - 1;
    const kind = withRng(rng, () => {
      const chunks: Buffer[] = [];
      for (let i = int(1, 30); i > 0; i--) {
        if (chance(0.08)) chunks.push(frame({ opcode: chance(0.7) ? 9 : 10, payload: bytes(int(0, 125)) }));
        chunks.push(...message());
      }
      let kind = 'valid';
      if (last) {
        const r = rand();
        if (r < 0.55) { kind = 'malformed'; chunks.push(...malformed()); }
        else if (r < 0.8) { kind = 'close'; chunks.push(frame({ opcode: 8, payload: chance(0.2) ? undefined : closePayload(pick([1000, 1001, 3001, 4999]), utf8Text(10)) })); }
        else kind = 'eof';
      }
      const data = Buffer.concat(chunks);
      sent.push(data);
      // Written in a few pieces so that the server's reads split frames anywhere.
      for (let at = 0; at < data.length;) {
        const n = chance(0.5) ? data.length - at : int(1, data.length - at);
        c.socket.write(data.subarray(at, at + n));
        at += n;
      }
      return kind;
    });
    const all = simulate(Buffer.concat(sent), MAX_PAYLOAD);
    const before = simulate(Buffer.concat(sent.slice(0, -1)), MAX_PAYLOAD);
    const o: Outcome = { ...all, expect: all.expect.slice(consumed) };
    consumed = all.expect.length;
    t.cases[kind] = (t.cases[kind] ?? 0) + 1;
    await checkOutcome(c, o, `seed ${SEED}, ${kind}`);
    t.frames += all.frames - before.frames;
    frames += all.frames - before.frames;
    if (o.end !== 'open') {
      t.messages += all.messages; t.payloadBytes += all.payloadBytes;
      if (o.end.normal) t.normal++;
      else if (o.end.close === 1009) t.tooBig++;
      else t.protocolError++;
      t.cases[`close ${o.end.close}`] = (t.cases[`close ${o.end.close}`] ?? 0) + 1;
      return frames;
    }
    if (last) {
      // Incomplete frame or clean boundary: the client half-closes; the server must end the TCP connection without a
      // close frame (the client never closed the WebSocket), counted as 'error'.
      c.socket.end();
      const rest = await c.ended();
      assert.equal(rest.length, 0, `seed ${SEED}: no frame after EOF, got ${rest.subarray(0, 40).toString('hex')}`);
      t.messages += all.messages; t.payloadBytes += all.payloadBytes; t.error++;
      return frames;
    }
  }
  return frames;
}

test('threads server: ≥100k random valid and malformed frames, exact replies and close codes', { timeout: 120_000 }, async () => {
  const server: ThreadsServer = startThreadsServer({
    host: '127.0.0.1', port: 0, pool: 0, queueLimit: 0, threadStack: 256 * 1024, maxPayload: MAX_PAYLOAD,
    idleTimeoutMs: 0, maxBackpressure: 1024 * 1024, handshakeTimeoutMs: 10_000, histogramBounds: [0.001, 0.01, 0.1, 1],
  });
  const t: Totals = { frames: 0, messages: 0, payloadBytes: 0, normal: 0, protocolError: 0, tooBig: 0, error: 0, cases: {} };
  const started = Date.now();
  let connections = 0;
  try {
    await Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
      const rng = rngFor(w);
      for (let frames = 0; frames < FRAME_TARGET / WORKERS;) {
        connections++;
        frames += await oneConnection(server.port, rng, t);
      }
    }));
    const seconds = (Date.now() - started) / 1000;
    console.log(`seed ${SEED}: ${t.frames} frames, ${t.messages} messages over ${connections} connections in ${seconds.toFixed(1)} s`,
      JSON.stringify(t.cases));
    assert.ok(t.frames >= FRAME_TARGET);
    assert.ok(seconds < 60, `took ${seconds} s`);

    // Counters equal the true totals. A close is counted before the server's close frame or FIN goes out.
    const s = server.stats();
    assert.equal(s.accepted, connections);
    assert.equal(s.open, 0);
    assert.deepEqual(s.closed, {
      normal: t.normal, going_away: 0, protocol_error: t.protocolError, too_big: t.tooBig, idle_timeout: 0,
      backpressure: 0, handshake_timeout: 0, error: t.error, rejected: 0,
    });
    assert.equal(s.messagesReceived, t.messages);
    assert.equal(s.messagesSent, t.messages);
    assert.equal(s.bytesReceived, t.payloadBytes);
    assert.equal(s.bufferedBytes, 0);
    assert.equal(s.sendDropped, 0);
    const commands = Object.values(s.commands).reduce((n, h) => n + h.count, 0);
    assert.equal(commands, t.messages);
    assert.equal(s.handshake.count, connections);
    assert.equal(s.handshake.buckets.at(-1), connections);

    // Still serving.
    const c = await RawClient.open(server.port);
    c.socket.write(frame({ opcode: 1, payload: Buffer.from('last cpu 1000') }));
    assert.equal((await c.frame()).payload.toString(), 'last ok 2358450d');
    c.socket.destroy();
  } finally {
    await server.close();
  }
});

test('threads server: one of each protocol violation gets its close code', async () => {
  const server = startThreadsServer({
    host: '127.0.0.1', port: 0, pool: 0, queueLimit: 0, threadStack: 256 * 1024, maxPayload: 1000,
    idleTimeoutMs: 0, maxBackpressure: 1024 * 1024, handshakeTimeoutMs: 10_000, histogramBounds: [],
  });
  const cases: [string, Buffer[], number][] = [
    ['unmasked', [frame({ opcode: 1, payload: Buffer.from('1 echo x'), masked: false })], 1002],
    ['rsv1', [frame({ opcode: 1, payload: Buffer.from('1 echo x'), rsv: 4 })], 1002],
    ['opcode 3', [frame({ opcode: 3 })], 1002],
    ['opcode 11', [frame({ opcode: 11 })], 1002],
    ['fragmented ping', [frame({ opcode: 9, fin: false })], 1002],
    ['ping of 126 bytes', [frame({ opcode: 9, payload: Buffer.alloc(126) })], 1002],
    ['continuation first', [frame({ opcode: 0, payload: Buffer.from('x') })], 1002],
    ['text inside text', [frame({ opcode: 1, fin: false, payload: Buffer.from('1 ') }), frame({ opcode: 1 })], 1002],
    ['64-bit length with top bit', [frame({ opcode: 2, lenForm: 64, declared: 1n << 63n })], 1002],
    ['huge 64-bit length', [frame({ opcode: 2, lenForm: 64, declared: (1n << 62n) })], 1009],
    ['over maxPayload', [frame({ opcode: 2, payload: Buffer.alloc(1001) })], 1009],
    ['over maxPayload in fragments', [frame({ opcode: 2, fin: false, payload: Buffer.alloc(600) }), frame({ opcode: 0, payload: Buffer.alloc(401) })], 1009],
    ['invalid UTF-8', [frame({ opcode: 1, payload: Buffer.from([0x31, 0x20, 0xff]) })], 1007],
    ['UTF-8 cut at the end', [frame({ opcode: 1, fin: false, payload: Buffer.from('1 echo \xe2', 'latin1') }), frame({ opcode: 0 })], 1007],
    ['surrogate', [frame({ opcode: 1, payload: Buffer.from([0x31, 0x20, 0xed, 0xa0, 0x80]) })], 1007],
    ['close with 1 byte', [frame({ opcode: 8, payload: Buffer.from([3]) })], 1002],
    ['close 1005', [frame({ opcode: 8, payload: closePayload(1005) })], 1002],
    ['close reason not UTF-8', [frame({ opcode: 8, payload: closePayload(1000, Buffer.from([0xc0, 0x80])) })], 1007],
    ['close 4321', [frame({ opcode: 8, payload: closePayload(4321, Buffer.from('bye')) })], 4321],
    ['close without code', [frame({ opcode: 8 })], 1000],
  ];
  try {
    for (const [name, frames, code] of cases) {
      const c = await RawClient.open(server.port);
      c.socket.write(Buffer.concat(frames));
      const f = await c.frame(name);
      assert.deepEqual([f.opcode, f.payload.readUInt16BE(0)], [8, code], name);
      c.socket.end();
      await c.ended();
    }
    const s = server.stats();
    assert.deepEqual([s.closed.protocol_error, s.closed.too_big, s.closed.normal], [15, 3, 2]);
  } finally {
    await server.close();
  }
});
