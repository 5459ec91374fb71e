/**
 * wss://: a connection of the pool (client/pool.ts) over node:tls instead of a bare libuv TCP handle. A TLS session
 * needs OpenSSL's state and a TLSSocket (a stream) whatever wraps it, so the bare-handle savings do not apply here;
 * what stays the same is that no closure is made per connection: every socket shares the handlers below, which find
 * their slot through the handle, and the pool drives a {@link TlsHandle} through the same calls as a TCP handle.
 *
 * Connect latency includes TLS: the pool sends the upgrade on `secureConnect`. A certificate the swarm cannot verify
 * is its own cause (`tls_certificate`), any other TLS failure `tls_handshake`; socket errors keep their errno.
 */
import { constants } from 'node:os';
import * as tls from 'node:tls';
import type { SwarmCause } from '../metrics/swarm.js';
import type { SwarmHandshake, SwarmTarget } from './options.js';

/** What the pool hears from a TLS connection (the same events its TCP handles raise). */
export interface TlsEvents {
  /** TCP and TLS are up (status 0), or TCP failed with a negative errno (status < 0). */
  connected(slot: number, h: TlsHandle, status: number): void;
  /** `nread` bytes in `buf`, or a negative errno / EOF. */
  received(slot: number, nread: number, buf?: Buffer): void;
  /** TLS failed before the session was up. */
  tlsFailed(slot: number, h: TlsHandle, cause: SwarmCause, detail: string): void;
}

const UV_EOF = -4095;
const UV_ECONNRESET = -constants.errno.ECONNRESET;
/** OpenSSL's and Node's codes for a certificate the client could not verify. */
const CERTIFICATE = /CERT|SELF_SIGNED|UNABLE_TO_(VERIFY|GET_ISSUER)|HOSTNAME_MISMATCH|ALTNAME/;

type Socket = tls.TLSSocket & { wslab: TlsHandle };

function onSecure(this: Socket): void {
  const h = this.wslab;
  h.secure = true;
  h.events.connected(h.slot, h, 0);
}
function onData(this: Socket, chunk: Buffer): void { this.wslab.events.received(this.wslab.slot, chunk.length, chunk); }
function onEnd(this: Socket): void { this.wslab.events.received(this.wslab.slot, UV_EOF); }
function onClose(this: Socket): void {
  const h = this.wslab;
  if (!h.closed) h.events.received(h.slot, h.secure ? UV_EOF : UV_ECONNRESET);
}
function onError(this: Socket, err: NodeJS.ErrnoException): void {
  const h = this.wslab;
  if (h.closed) return;
  const errno = typeof err.errno === 'number' && err.errno < 0 ? err.errno : 0;
  if (h.secure) return h.events.received(h.slot, errno || UV_ECONNRESET);
  if (errno !== 0 && err.syscall !== undefined) return h.events.connected(h.slot, h, errno); // TCP: refused, port in use, …
  const code = err.code ?? 'ERR_TLS';
  h.events.tlsFailed(h.slot, h, CERTIFICATE.test(code) ? 'tls_certificate' : 'tls_handshake', `${code}: ${err.message}`);
}

/**
 * The TLS context every connection of a pool shares: without one, tls.connect builds an OpenSSL context (and reads
 * the CA list) per connection, which costs memory and CPU on each of thousands of handshakes.
 */
export const secureContext = (hs: SwarmHandshake): tls.SecureContext => tls.createSecureContext(hs.ca === undefined ? {} : { ca: hs.ca });

/** One wss:// connection, driven by the pool like a TCP handle. */
export class TlsHandle {
  readonly tls = true;
  secure = false;
  closed = false;
  private readonly socket: Socket;

  constructor(readonly slot: number, t: SwarmTarget, source: string | undefined, localPort: number, hs: SwarmHandshake,
    context: tls.SecureContext, readonly events: TlsEvents) {
    const servername = hs.servername ?? (t.hostname || undefined);
    this.socket = tls.connect({
      host: t.ip, port: t.port,
      ...(source !== undefined ? { localAddress: source, localPort } : {}),
      // checkServerIdentity compares against `servername`, else `host` (an IP address here)
      servername, secureContext: context, rejectUnauthorized: !hs.insecure,
    }) as Socket;
    this.socket.wslab = this;
    this.socket.setNoDelay(true);
    this.socket.on('secureConnect', onSecure);
    this.socket.on('data', onData);
    this.socket.on('end', onEnd);
    this.socket.on('error', onError);
    this.socket.on('close', onClose);
  }

  readStart(): number { this.socket.resume(); return 0; }
  readStop(): number { this.socket.pause(); return 0; }
  get writeQueueSize(): number { return this.socket.writableLength; }
  write(buf: Buffer): void { this.socket.write(buf); }
  setNoDelay(_on: boolean): number { return 0; }
  /*
   * No RST for TLS: Node's resetAndDestroy() only takes a bare TCP handle, and a TLSSocket's is a TLS wrap. A FIN
   * leaves TIME_WAIT on our ports for 60 s; wss:// runs are smaller than the million-connection plain ones.
   */
  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
  reset(): number {
    this.close();
    return 0;
  }
}
