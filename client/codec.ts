/**
 * A minimal RFC 6455 client codec, transport-free: it turns bytes into events and events into bytes, and keeps no
 * object per connection. Connections are integer slots; the only per-slot memory is a carried partial frame or a
 * fragmented message in progress, which exist only while a frame straddles two reads (rare for small messages).
 *
 * The swarm drives it from libuv TCP handles (client/pool.ts); the tests drive it from a plain `net.Socket`.
 *
 * permessage-deflate (RFC 7692, `--deflate`) is offered with no context takeover either way, so a compressed message
 * from the server inflates on its own: no zlib stream is kept per connection, and the swarm sends uncompressed.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { constants as zlib, inflateRawSync } from 'node:zlib';

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Largest response head accepted before the upgrade is declared invalid. */
const MAX_HEAD = 8192;
/** Largest message reassembled; `fill` replies go up to 8 MiB (docs/protocol.md). */
export const MAX_MESSAGE = 64 * 1024 * 1024;

/**
 * The swarm's only extension offer: permessage-deflate without context takeover either way (each message compressed
 * on its own), as uWS's shared compressor and ws `--deflate` give it.
 */
export const DEFLATE_OFFER = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
/** The four bytes RFC 7692 §7.2.1 has the sender strip from each compressed message; the receiver appends them. */
const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/** RSV1: a data message's first frame carries it when the message is compressed (RFC 7692 §6). */
export const RSV1 = 0x40;

/*
 * Masks and keys come from one pool refilled 8 KiB at a time: one randomFillSync per 2048 frames instead of one
 * crypto call (and one Buffer) per frame.
 */
const RANDOM = Buffer.allocUnsafe(8192);
let randomAt = RANDOM.length;
function randomOffset(n: number): number {
  if (randomAt + n > RANDOM.length) {
    randomFillSync(RANDOM);
    randomAt = 0;
  }
  const at = randomAt;
  randomAt += n;
  return at;
}

/** Writes a fresh 16-byte Sec-WebSocket-Key nonce into `into` at `offset`. */
export function newKey(into: Uint8Array, offset: number): void {
  const at = randomOffset(16);
  into.set(RANDOM.subarray(at, at + 16), offset);
}

/** The Sec-WebSocket-Accept a server must answer to the key stored at `offset`. */
export function acceptFor(keys: Uint8Array, offset: number): string {
  const key = Buffer.from(keys.buffer, keys.byteOffset + offset, 16).toString('base64');
  return createHash('sha1').update(key + GUID).digest('base64');
}

/**
 * The upgrade request for one target, built once: only the 24-character key differs between connections, and the
 * header lines `perConnection` renders (`--header` values with placeholders), when there are any. `extra` is
 * further header lines, each ending in CRLF (Origin, User-Agent, Sec-WebSocket-Protocol, the user's headers).
 */
export class UpgradeRequest {
  private readonly head: Buffer;
  private readonly tail: Buffer;
  constructor(host: string, path: string, extra = '', private readonly perConnection?: (conn: number) => string) {
    this.head = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}Sec-WebSocket-Key: `, 'utf8');
    this.tail = Buffer.from('\r\nSec-WebSocket-Version: 13\r\n\r\n', 'latin1');
  }
  /** The request for the key stored at `offset` of `keys`, for global connection `conn`. */
  build(keys: Uint8Array, offset: number, conn = 0): Buffer {
    const lines = this.perConnection?.(conn);
    const own = lines === undefined ? 0 : Buffer.byteLength(lines);
    const out = Buffer.allocUnsafe(this.head.length + 24 + this.tail.length + own);
    this.head.copy(out, 0);
    out.write(Buffer.from(keys.buffer, keys.byteOffset + offset, 16).toString('base64'), this.head.length, 'latin1');
    if (lines !== undefined) {
      // the key line ends in CRLF, then the connection's own lines, then the version line (tail without its CRLF)
      let at = this.head.length + 24;
      at += out.write('\r\n', at, 'latin1');
      at += out.write(lines, at, 'utf8');
      this.tail.copy(out, at, 2);
      return out.subarray(0, at + this.tail.length - 2);
    }
    this.tail.copy(out, this.head.length + 24);
    return out;
  }
}

export const UPGRADE_PARTIAL = -1;
export const UPGRADE_REJECTED = -2;
export const UPGRADE_INVALID = -3;

/**
 * Checks the server's answer to the upgrade request held in `buf[start, end)`. Returns the index just past the head
 * (frames may follow it in the same read), {@link UPGRADE_PARTIAL} when the head is not complete yet,
 * {@link UPGRADE_REJECTED} when the status is not 101, {@link UPGRADE_INVALID} when a 101 lacks the upgrade headers
 * or carries the wrong Sec-WebSocket-Accept. {@link upgradeFailure} says why, for a diagnostic line.
 */
export function checkUpgrade(buf: Buffer, start: number, end: number, keys: Uint8Array, keyOffset: number, protocols: readonly string[] = [], deflate = false): number {
  const at = buf.indexOf('\r\n\r\n', start, 'latin1');
  if (at < 0 || at + 4 > end) return end - start > MAX_HEAD ? UPGRADE_INVALID : UPGRADE_PARTIAL;
  return headProblem(buf.toString('latin1', start, at), keys, keyOffset, protocols, deflate) === undefined ? at + 4
    : statusOf(buf.toString('latin1', start, Math.min(at, start + 16))) === 101 ? UPGRADE_INVALID : UPGRADE_REJECTED;
}

/** Why {@link checkUpgrade} refused `buf[start, end)`, in words. */
export function upgradeFailure(buf: Buffer, start: number, end: number, keys: Uint8Array, keyOffset: number, protocols: readonly string[] = [], deflate = false): string {
  const at = buf.indexOf('\r\n\r\n', start, 'latin1');
  if (at < 0 || at >= end) return `no complete HTTP response head within ${MAX_HEAD} bytes`;
  return headProblem(buf.toString('latin1', start, at), keys, keyOffset, protocols, deflate) ?? 'none';
}

/**
 * Whether the 101 head in `buf[start, head end)` accepted permessage-deflate (after {@link checkUpgrade} passed it
 * with `deflate` offered: the answer is then either that extension, as offered, or none).
 */
export function deflateAccepted(buf: Buffer, start: number, headEnd: number): boolean {
  return /\r\nsec-websocket-extensions:/i.test(buf.toString('latin1', start, headEnd));
}

const statusOf = (line: string): number => (/^HTTP\/1\.[01] (\d{3})/.exec(line) ? Number(line.slice(9, 12)) : 0);

function headProblem(head: string, keys: Uint8Array, keyOffset: number, protocols: readonly string[], deflate: boolean): string | undefined {
  const lines = head.split('\r\n');
  const status = statusOf(lines[0]);
  if (status !== 101) return `server answered "${lines[0].slice(0, 80)}" instead of 101 Switching Protocols`;
  let upgrade = '', connection = '', accept = '', protocol: string | undefined, extensions: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(':');
    if (colon < 0) continue;
    const name = lines[i].slice(0, colon).trim().toLowerCase();
    const value = lines[i].slice(colon + 1).trim();
    if (name === 'upgrade') upgrade = value.toLowerCase();
    else if (name === 'connection') connection = value.toLowerCase();
    else if (name === 'sec-websocket-accept') accept = value;
    else if (name === 'sec-websocket-protocol') protocol = value;
    else if (name === 'sec-websocket-extensions') extensions = extensions === undefined ? value : `${extensions}, ${value}`;
  }
  if (upgrade !== 'websocket') return `101 without "Upgrade: websocket" (got "${upgrade}")`;
  if (!connection.split(',').some((t) => t.trim() === 'upgrade')) return '101 without "Connection: Upgrade"';
  const expected = acceptFor(keys, keyOffset);
  if (accept !== expected) return `Sec-WebSocket-Accept is "${accept}", expected "${expected}"`;
  // RFC 6455 §4.1: the server picks one of the offered subprotocols, or none; we offered them because we need one
  if (protocols.length > 0 && (protocol === undefined || !protocols.includes(protocol))) {
    return protocol === undefined ? `the server chose no subprotocol (offered ${protocols.join(', ')})` : `the server chose subprotocol "${protocol}", not one of ${protocols.join(', ')}`;
  }
  if (protocols.length === 0 && protocol !== undefined) return `the server chose subprotocol "${protocol}" though none was offered`;
  return extensions === undefined ? undefined : extensionProblem(extensions, deflate);
}

/**
 * RFC 6455 §9.1 and RFC 7692 §7.1: a server may accept only what was offered. We offer at most {@link DEFLATE_OFFER};
 * the answer must be permessage-deflate with server_no_context_takeover (we keep no inflate context), and may add
 * client_no_context_takeover and server_max_window_bits (inflation takes any window).
 */
function extensionProblem(value: string, deflate: boolean): string | undefined {
  if (!deflate) return `the server chose extension "${value}" though none was offered (the swarm offers permessage-deflate with --deflate only)`;
  const offers = value.split(',');
  if (offers.length > 1) return `the server chose several extensions ("${value}"), more than offered`;
  const [name, ...params] = offers[0].split(';').map((x) => x.trim().toLowerCase());
  if (name !== 'permessage-deflate') return `the server chose extension "${name}", not the permessage-deflate offered`;
  const names = params.map((p) => p.split('=')[0].trim());
  const stray = names.find((n) => n !== 'server_no_context_takeover' && n !== 'client_no_context_takeover' && n !== 'server_max_window_bits');
  if (stray !== undefined) return `the server answered permessage-deflate with "${stray}", which the swarm did not offer`;
  if (!names.includes('server_no_context_takeover')) return 'the server answered permessage-deflate without server_no_context_takeover, which the offer required';
  return undefined;
}

const headerLength = (len: number): number => (len < 126 ? 6 : len < 65536 ? 8 : 14);

/**
 * A masked client frame with `length` payload bytes: header and a fresh random mask are written, the payload is left
 * for the caller to fill at `frame.length - length`, then {@link maskPayload} masks it in place. Saves the copy a
 * build-then-mask API would need for payloads made of parts (request id + command).
 */
export function allocFrame(opcode: number, length: number, fin = true): Buffer {
  const h = headerLength(length);
  const out = Buffer.allocUnsafe(h + length);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (length < 126) out[1] = 0x80 | length;
  else if (length < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(length, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    out.writeUInt32BE(length >>> 0, 6);
  }
  const r = randomOffset(4);
  out[h - 4] = RANDOM[r]; out[h - 3] = RANDOM[r + 1]; out[h - 2] = RANDOM[r + 2]; out[h - 1] = RANDOM[r + 3];
  return out;
}

/** XORs the payload of a frame from {@link allocFrame} with the frame's own mask. */
export function maskPayload(frame: Buffer): void {
  const len = frame[1] & 0x7f;
  const p = len < 126 ? 6 : len === 126 ? 8 : 14;
  const m0 = frame[p - 4], m1 = frame[p - 3], m2 = frame[p - 2], m3 = frame[p - 1];
  const n = frame.length;
  let i = p;
  for (; i + 3 < n; i += 4) {
    frame[i] ^= m0; frame[i + 1] ^= m1; frame[i + 2] ^= m2; frame[i + 3] ^= m3;
  }
  for (let k = 0; i < n; i++, k++) frame[i] ^= frame[p - 4 + k];
}

/** A complete masked frame carrying `payload[start, end)` (copied). */
export function encodeFrame(opcode: number, payload?: Uint8Array, start = 0, end = payload?.length ?? 0, fin = true): Buffer {
  const out = allocFrame(opcode, end - start, fin);
  if (payload && end > start) out.set(payload.subarray(start, end), out.length - (end - start));
  maskPayload(out);
  return out;
}

/** A masked text frame. */
export function encodeText(text: string): Buffer {
  return encodeFrame(OP_TEXT, Buffer.from(text, 'utf8'));
}

/** A masked close frame; code 1005 ("no status") sends an empty payload, as RFC 6455 §7.1.5 requires. */
export function encodeClose(code = 1000, reason = ''): Buffer {
  if (code === 1005) return encodeFrame(OP_CLOSE);
  const r = Buffer.from(reason, 'utf8').subarray(0, 123);
  const out = allocFrame(OP_CLOSE, 2 + r.length);
  const p = out.length - 2 - r.length;
  out.writeUInt16BE(code, p);
  r.copy(out, p + 2);
  maskPayload(out);
  return out;
}

/**
 * What a {@link FrameReader} reports. Payload views (`data[start, end)`) are valid only during the call: the swarm
 * reads every socket into one shared buffer.
 */
export interface FrameSink {
  /** A complete text or binary message (fragments already reassembled; text already checked as UTF-8). */
  message(slot: number, opcode: number, data: Buffer, start: number, end: number): void;
  ping(slot: number, data: Buffer, start: number, end: number): void;
  pong(slot: number, data: Buffer, start: number, end: number): void;
  /** A close frame; `code` is 1005 when it carried none. Parsing of this read stops after it. */
  close(slot: number, code: number, data: Buffer, start: number, end: number): void;
  /** The server broke the protocol: fail the connection with `closeCode` (1002, 1007 or 1009). Parsing stops. */
  fail(slot: number, closeCode: number, detail: string): void;
}

/** Bytes of a frame that straddles reads: copied chunks until `need` bytes (0 = header not complete yet) are in. */
interface Carry { chunks: Buffer[]; size: number; need: number }
/** A fragmented message in progress (`compressed`: its first frame had RSV1). */
interface Fragments { opcode: number; chunks: Buffer[]; size: number; compressed: boolean }

/** Frame parser over integer slots: 7/16/64-bit lengths, fragmentation, control frames between fragments. */
export class FrameReader {
  private readonly carry = new Map<number, Carry>();
  private readonly fragments = new Map<number, Fragments>();

  /**
   * `deflated[slot]` is 1 where the connection negotiated permessage-deflate (the pool's array, set at its 101): there
   * RSV1 marks a compressed message. Absent: no slot did.
   */
  constructor(private readonly sink: FrameSink, private readonly maxMessage = MAX_MESSAGE, private readonly deflated?: Uint8Array) {}

  /** Slots holding a partial frame or message (for tests and leak checks). */
  get partial(): number { return this.carry.size + this.fragments.size; }

  /** Drops what is kept for `slot` (its connection ended). */
  forget(slot: number): void {
    this.carry.delete(slot);
    this.fragments.delete(slot);
  }

  /** Parses `buf[start, end)`, the next bytes received on `slot`. */
  feed(slot: number, buf: Buffer, start: number, end: number): void {
    const c = this.carry.get(slot);
    if (c === undefined) return this.parse(slot, buf, start, end);
    c.chunks.push(Buffer.from(buf.subarray(start, end)));
    c.size += end - start;
    if (c.need === 0) {
      const head = c.chunks.length === 1 ? c.chunks[0] : Buffer.concat(c.chunks, c.size);
      c.chunks = [head];
      const need = frameSize(head, 0, head.length, this.rsv(slot));
      if (need < 0 || need > this.maxMessage + 14) {
        this.carry.delete(slot);
        return this.parse(slot, head, 0, head.length); // reports the error
      }
      c.need = need;
    }
    if (c.need === 0 || c.size < c.need) return;
    this.carry.delete(slot);
    const all = c.chunks.length === 1 ? c.chunks[0] : Buffer.concat(c.chunks, c.size);
    this.parse(slot, all, 0, all.length);
  }

  /** The reserved bits a frame on `slot` may set. */
  private rsv(slot: number): number { return this.deflated !== undefined && this.deflated[slot] === 1 ? RSV1 : 0; }

  private parse(slot: number, buf: Buffer, start: number, end: number): void {
    let p = start;
    const rsv = this.rsv(slot);
    while (p < end) {
      const size = frameSize(buf, p, end, rsv);
      if (size < 0) return this.sink.fail(slot, 1002, size === BAD_LENGTH ? 'frame length beyond 2^53' : 'reserved bits set or masked server frame');
      if (size === 0 || p + size > end) {
        if (size > this.maxMessage + 14) return this.sink.fail(slot, 1009, 'frame larger than the largest message accepted');
        this.carry.set(slot, { chunks: [Buffer.from(buf.subarray(p, end))], size: end - p, need: size });
        return;
      }
      const b0 = buf[p], len7 = buf[p + 1] & 0x7f;
      const ps = p + (len7 < 126 ? 2 : len7 === 126 ? 4 : 10);
      p += size;
      if (!this.frame(slot, (b0 & 0x80) !== 0, b0 & 0x0f, buf, ps, p, (b0 & RSV1) !== 0)) return;
    }
  }

  /** Handles one complete frame; false = stop parsing this slot's bytes (closed or failed). */
  private frame(slot: number, fin: boolean, op: number, buf: Buffer, ps: number, pe: number, compressed: boolean): boolean {
    const s = this.sink;
    if (op >= 8) {
      if (!fin || pe - ps > 125) return fail(s, slot, 1002, 'fragmented or oversized control frame');
      if (compressed) return fail(s, slot, 1002, 'RSV1 on a control frame');
      if (op === OP_PING) s.ping(slot, buf, ps, pe);
      else if (op === OP_PONG) s.pong(slot, buf, ps, pe);
      else if (op === OP_CLOSE) {
        if (pe - ps === 1) return fail(s, slot, 1002, 'close frame with a 1-byte payload');
        const code = pe - ps >= 2 ? buf.readUInt16BE(ps) : 1005;
        if (pe - ps >= 2 && !validCloseCode(code)) return fail(s, slot, 1002, `invalid close code ${code}`);
        if (pe - ps > 2 && !isUtf8(buf.subarray(ps + 2, pe))) return fail(s, slot, 1007, 'close reason is not UTF-8');
        this.forget(slot);
        s.close(slot, code, buf, Math.min(ps + 2, pe), pe);
        return false;
      } else return fail(s, slot, 1002, `unknown control opcode ${op}`);
      return true;
    }
    const f = this.fragments.get(slot);
    if (op === OP_CONTINUATION) {
      if (f === undefined) return fail(s, slot, 1002, 'continuation frame without a message');
      if (compressed) return fail(s, slot, 1002, 'RSV1 on a continuation frame');
      f.size += pe - ps;
      if (f.size > this.maxMessage) return fail(s, slot, 1009, 'message larger than the largest accepted');
      f.chunks.push(Buffer.from(buf.subarray(ps, pe)));
      if (!fin) return true;
      this.fragments.delete(slot);
      if (f.compressed) f.chunks.push(DEFLATE_TAIL);
      const all = Buffer.concat(f.chunks);
      return f.compressed ? this.inflated(slot, f.opcode, all) : this.deliver(slot, f.opcode, all, 0, all.length);
    }
    if (op !== OP_TEXT && op !== OP_BINARY) return fail(s, slot, 1002, `unknown data opcode ${op}`);
    if (f !== undefined) return fail(s, slot, 1002, 'new message before the fragmented one ended');
    if (fin) return compressed ? this.inflated(slot, op, Buffer.concat([buf.subarray(ps, pe), DEFLATE_TAIL])) : this.deliver(slot, op, buf, ps, pe);
    this.fragments.set(slot, { opcode: op, chunks: [Buffer.from(buf.subarray(ps, pe))], size: pe - ps, compressed });
    return true;
  }

  /** A compressed message (its payload with the tail appended), inflated on its own and delivered. */
  private inflated(slot: number, op: number, payload: Buffer): boolean {
    let out: Buffer;
    try {
      out = inflateRawSync(payload, { maxOutputLength: this.maxMessage, finishFlush: zlib.Z_SYNC_FLUSH });
    } catch (err) {
      const tooBig = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      return fail(this.sink, slot, tooBig ? 1009 : 1007, tooBig ? 'compressed message inflates past the largest accepted' : `compressed message does not inflate (${(err as Error).message})`);
    }
    return this.deliver(slot, op, out, 0, out.length);
  }

  private deliver(slot: number, op: number, buf: Buffer, ps: number, pe: number): boolean {
    if (op === OP_TEXT && !isUtf8(buf.subarray(ps, pe))) return fail(this.sink, slot, 1007, 'text message is not UTF-8');
    this.sink.message(slot, op, buf, ps, pe);
    return true;
  }
}

function fail(sink: FrameSink, slot: number, code: number, detail: string): false {
  sink.fail(slot, code, detail);
  return false;
}

const BAD_BITS = -1;
const BAD_LENGTH = -2;

/**
 * Size of the frame starting at `buf[p]` (header + payload), 0 when its header is not complete within `end`, or a
 * negative error: a reserved bit outside `rsv` (those of the extensions negotiated), a masked server frame, a 64-bit
 * length past 2^53.
 */
function frameSize(buf: Buffer, p: number, end: number, rsv = 0): number {
  if (end - p < 2) return 0;
  const b0 = buf[p], b1 = buf[p + 1];
  if ((b0 & 0x70 & ~rsv) !== 0 || (b1 & 0x80) !== 0) return BAD_BITS;
  const len7 = b1 & 0x7f;
  if (len7 < 126) return 2 + len7;
  if (len7 === 126) return end - p < 4 ? 0 : 4 + buf.readUInt16BE(p + 2);
  if (end - p < 10) return 0;
  const hi = buf.readUInt32BE(p + 2);
  if (hi > 0x1fffff) return BAD_LENGTH;
  return 10 + hi * 2 ** 32 + buf.readUInt32BE(p + 6);
}

/** Close codes a peer may send (RFC 6455 §7.4.1 and the IANA registry; 1005/1006/1015 never go on the wire). */
const validCloseCode = (c: number): boolean =>
  (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
