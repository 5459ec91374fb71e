import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';

/**
 * A deliberately dumb WebSocket client on a raw socket, for the cases a well-behaved library refuses to produce:
 * unmasked frames, invalid UTF-8, oversize declarations, never reading, never answering pings.
 */
export interface RawConnection {
  readonly socket: net.Socket;
  /** Bytes received after the 101 response. */
  received(): Buffer;
  /** The status code of the server's close frame, if one arrived. */
  closeCode(): number | undefined;
  /** Resolves when the server ends the TCP connection. */
  readonly ended: Promise<void>;
}

export function frame(opcode: number, payload: Buffer, { mask = true, fin = true } = {}): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  key.copy(head, 2 + ext);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([head, body]);
}

/**
 * Opens a raw connection and completes the handshake (unless `handshake` is false); `read: false` never reads.
 * `localAddress` binds the source address (another 127.0.0.x: a per-address limit, or 127.0.0.1 out of ports).
 */
export async function rawConnect(url: string, { handshake = true, read = true, localAddress = undefined as string | undefined } = {}): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  const socket = net.connect({ host: hostname, port: Number(port), localAddress });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let buf = Buffer.alloc(0);
  let upgraded = !handshake;
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  if (handshake) {
    const key = randomBytes(16).toString('base64');
    socket.write(`GET / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    const expect = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        if (!head.startsWith('HTTP/1.1 101') || !head.toLowerCase().includes(expect.toLowerCase())) {
          return reject(new Error(`handshake failed: ${head}`));
        }
        buf = buf.subarray(end + 4);
        socket.off('data', onData);
        upgraded = true;
        resolve();
      };
      socket.on('data', onData);
      socket.once('close', () => reject(new Error('closed during handshake')));
    });
  }
  if (read) socket.on('data', (d: Buffer) => { buf = Buffer.concat([buf, d]); });
  else socket.pause();
  return {
    socket, ended,
    received: () => (upgraded ? buf : Buffer.alloc(0)),
    closeCode: () => {
      // Walk the server's (unmasked) frames and return the first close frame's status code.
      for (let at = 0; at + 2 <= buf.length;) {
        const op = buf[at] & 0x0f;
        let len = buf[at + 1] & 0x7f;
        let off = at + 2;
        if (len === 126) { len = buf.readUInt16BE(off); off += 2; } else if (len === 127) { len = Number(buf.readBigUInt64BE(off)); off += 8; }
        if (op === 8) return len >= 2 ? buf.readUInt16BE(off) : 1005;
        at = off + len;
      }
      return undefined;
    },
  };
}
