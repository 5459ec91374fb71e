import { performance } from 'node:perf_hooks';
import type { CloseReason, Command } from '../../../metrics/index.js';
import { AddressLimit } from '../../address-limit.js';
import { IdleSweep } from '../../idle-sweep.js';
import { freePort } from '../../../core/net.js';
import { defineDesign, localMetrics, type DesignHandle } from '../../design.js';
import { ServerMetrics } from '../../metrics.js';
import type { ServeOptions } from '../../options.js';
import { dispatch } from '../../protocol.js';
import { MAX_REQUEST_HEAD, REFUSED, refusalHeaders, refusalOf, STATUS_TEXT, type Refusal } from '../../upgrade-check.js';
import { loadUws } from './loader.js';

/** Per-connection state, uWS's userData: four fields, nothing else is kept per connection. */
interface Conn {
  seen: number;
  pinged: boolean;
  reason: CloseReason | undefined;
  /** The source address counted against --max-conns-per-ip; undefined when there is no limit. */
  address: string | undefined;
}
type UwsSocket = import('@trufflesuite/uws-js-unofficial').WebSocket<Conn>;
type UwsRequest = import('@trufflesuite/uws-js-unofficial').HttpRequest;
type UwsResponse = import('@trufflesuite/uws-js-unofficial').HttpResponse;

/** uWS's largest maxPayloadLength (an unsigned 32-bit field): what --no-defenses gives it, as uWS has no "no limit". */
const UWS_MAX_PAYLOAD = 0xffff_ffff;

/*
 * What of a big request head reaches our handler, and so our 431 and its count, is uWS's parser's choice
 * (docs/defenses.md, "uws and request heads"; measured on loopback, test/server/uws-heads.test.ts). It parses a head
 * in place when one read holds all of it, and buffers one that spans reads only up to UWS_HEAD_BUFFER bytes: past
 * that, or when one read leaves that many bytes of an unfinished head, it closes the socket without an answer (a
 * reset when bytes are still unread), and no callback tells JS. So a head over 4 KiB, even a lawful one under our
 * 8 KiB, is dropped whenever TCP hands it over in pieces, which over a real network is a matter of timing.
 * Upstream uWebSockets later made the buffer's size an environment variable (UWS_HTTP_MAX_HEADERS_SIZE, read once
 * when the library loads); the 20.30 binary has no such string and measured the same with it set, so there is
 * nothing to raise here. 20.30 exposes no hook at TCP accept or close (no `App.filter`) to count these drops by.
 */
/** uWebSockets.js 20.30's fixed buffer for a request head that arrives in more than one read (bytes). */
export const UWS_HEAD_BUFFER = 4096;

/** Bytes of the request head as received, near enough: uWS hands JS parsed fields, not the raw head. */
function headBytes(req: UwsRequest): number {
  let n = req.getMethod().length + req.getUrl().length + (req.getQuery() ?? '').length + 14; // " ", "?", " HTTP/1.1\r\n", "\r\n"
  req.forEach((k, v) => { n += k.length + v.length + 4; });
  return n;
}

/**
 * Why uWS must not upgrade this request, by the check every design shares (upgrade-check.ts). uWS itself checks only
 * that a GET carries a 24-character Sec-WebSocket-Key; it would upgrade version 8 or a 20 KiB head.
 */
function refusalOfUws(req: UwsRequest): Refusal | undefined {
  if (headBytes(req) > MAX_REQUEST_HEAD) return REFUSED.headersTooLarge;
  return refusalOf({
    method: req.getMethod().toUpperCase(), // uWS 20.30 lower-cases it
    upgrade: req.getHeader('upgrade'), connection: req.getHeader('connection'),
    key: req.getHeader('sec-websocket-key'), version: req.getHeader('sec-websocket-version'),
  });
}

/** Answers a refusal and closes the connection (uWS would otherwise keep it alive for the next request). */
function refuse(res: UwsResponse, r: Refusal): void {
  res.writeStatus(`${r.status} ${STATUS_TEXT[r.status]}`).writeHeader('content-type', 'text/plain');
  for (const [k, v] of Object.entries(refusalHeaders(r))) res.writeHeader(k, v);
  res.end(`wslab: ${r.message}\n`, true);
}

const SEND_BACKPRESSURE = 0;
const SEND_DROPPED = 2;
const decoder = new TextDecoder();

/** uWebSockets.js closes an unfinished HTTP request after its fixed 10 s HTTP idle timeout; JS cannot change it. */
export const UWS_HANDSHAKE_TIMEOUT = Object.freeze({ ms: 10_000, by: 'uws', why: 'uWebSockets.js HTTP idle timeout' });

export const uwsDesign = defineDesign({
  name: 'uws',
  model: 'loop',
  summary: 'single event loop, uWebSockets.js (C++ sockets, JS handlers)',
  flags: {},
  // uWS hands JS parsed requests only: bytes that are not HTTP never reach a handler, so they are neither answered nor counted.
  traits: () => ({ model: 'loop', fixedHandshakeTimeout: UWS_HANDSHAKE_TIMEOUT, dialect: 'uws', workers: 1, countsNonHttp: false, deflate: true }),
  representative: true,
  reusePort: true,
  async start(o: ServeOptions): Promise<DesignHandle> {
    const { uws, version } = loadUws();
    // uWS hands out no collection of its sockets; this set is what shutdown and the gauges walk.
    const open = new Set<UwsSocket>();
    // Sockets that have had to buffer a send: the gauge and the slow-reader check walk these, not every socket.
    const backlogged = new Set<UwsSocket>();
    const metrics = new ServerMetrics(o.design, {
      open: () => open.size,
      bufferedBytes: () => { let sum = 0; for (const s of backlogged) sum += s.getBufferedAmount(); return sum; },
    }, { defenses: o.defenses });
    const perIp = new AddressLimit(o.maxConnsPerIp);

    const end = (s: UwsSocket, reason: CloseReason): void => {
      s.getUserData().reason ??= reason;
      s.close();
    };
    /** Sends, or drops the reply and ends the connection when it is over --max-backpressure. */
    const sent = (s: UwsSocket, data: string | ArrayBuffer, binary: boolean): boolean => {
      const status = o.maxBackpressure > 0 && s.getBufferedAmount() > o.maxBackpressure ? SEND_DROPPED : s.send(data, binary);
      if (status === SEND_BACKPRESSURE) backlogged.add(s);
      if (status !== SEND_DROPPED) return true;
      metrics.sendDropped.inc();
      end(s, 'backpressure');
      return false;
    };
    /** Sends a protocol reply (text) or an echo (binary), and accounts for it. */
    const respond = (s: UwsSocket, reply: string | ArrayBuffer, command: Command, started: number): void => {
      if (!open.has(s)) return; // a `wait` outlived its connection
      const binary = typeof reply !== 'string';
      if (!sent(s, reply, binary)) return;
      metrics.messagesSent.inc();
      metrics.bytesSent.inc(binary ? reply.byteLength : Buffer.byteLength(reply));
      metrics.command(command, started, performance.now());
    };

    const app = uws.App().ws<Conn>('/*', {
      /*
       * --deflate: one compressor and one decompressor for every socket of the loop (no context kept between
       * messages), so an idle connection costs nothing more. uWS inflates into a buffer capped at maxPayloadLength
       * and ends the TCP connection past it ("Received too big message, or other inflation error": too_big below).
       * Fragments: uWS appends each to one buffer, so a message's memory is bounded by maxPayloadLength however it is
       * cut (no per-fragment cost, hence no --max-fragments here).
       */
      compression: o.deflate ? uws.SHARED_COMPRESSOR | uws.SHARED_DECOMPRESSOR : uws.DISABLED,
      maxPayloadLength: o.maxPayload || UWS_MAX_PAYLOAD,
      maxBackpressure: o.maxBackpressure, // 0 (--no-defenses): uWS buffers without limit
      /*
       * Idle detection is ours, not uWS's: its idleTimeout has a 4 s granularity, accepts only 0 or ≥ 8 s and aborts
       * the process on other values. The sweep below gives uws the same semantics as the other designs (ping at
       * half, close with 1001 "idle timeout" at the full timeout) and lets us count the reason.
       */
      idleTimeout: 0,
      sendPingsAutomatically: false,
      /*
       * --max-conns-per-ip counts WebSocket connections from upgrade to close: uWS gives JS no hook at TCP accept,
       * so, unlike ws and threads, connections still sending their request head do not count (the fixed 10 s
       * handshake timeout bounds those).
       */
      upgrade: (res, req, context) => {
        const t0 = performance.now();
        const refused = refusalOfUws(req);
        if (refused) return void rejected(res, refused);
        let address: string | undefined;
        if (o.maxConnsPerIp > 0) {
          address = Buffer.from(res.getRemoteAddressAsText()).toString();
          if (!perIp.acquire(address)) return void rejected(res, REFUSED.connLimit);
        }
        res.upgrade<Conn>(
          { seen: t0, pinged: false, reason: undefined, address },
          req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'),
          req.getHeader('sec-websocket-extensions'), context,
        );
        metrics.handshake.observe((performance.now() - t0) / 1000);
      },
      open: (s) => {
        open.add(s);
        metrics.accepted.inc();
      },
      message: (s, message, isBinary) => {
        const c = s.getUserData();
        c.seen = performance.now();
        metrics.messagesReceived.inc();
        metrics.bytesReceived.inc(message.byteLength);
        if (!isBinary) return dispatch(s, decoder.decode(message), respond);
        respond(s, message, 'binary', performance.now());
      },
      drain: (s) => { if (s.getBufferedAmount() === 0) backlogged.delete(s); },
      pong: (s) => { const c = s.getUserData(); c.seen = performance.now(); c.pinged = false; },
      ping: (s) => { s.getUserData().seen = performance.now(); },
      close: (s, code, message) => {
        const c = s.getUserData();
        open.delete(s);
        backlogged.delete(s);
        if (c.address !== undefined) perIp.release(c.address);
        metrics.closed(c.reason ?? reasonOf(code, message));
      },
    }).any('/*', (res, req) => rejected(res, refusalOfUws(req) ?? REFUSED.notUpgrade));
    // Counted as a refusal and as a `rejected` close: refuse() closes the connection.
    const rejected = (res: UwsResponse, r: Refusal): void => {
      metrics.rejected(r.reason);
      refuse(res, r);
    };

    const sweepMs = o.idleTimeoutMs > 0 ? Math.max(100, Math.min(1000, o.idleTimeoutMs / 4)) : 1000;
    const idle = new IdleSweep(o.idleTimeoutMs);
    const sweep = setInterval(() => {
      if (o.maxBackpressure > 0) for (const s of backlogged) if (s.getBufferedAmount() > o.maxBackpressure) end(s, 'backpressure');
      const now = performance.now();
      if (!idle.due(now)) return;
      let earliest = Infinity;
      for (const s of open) {
        const c = s.getUserData();
        const silent = now - c.seen;
        if (silent >= o.idleTimeoutMs) { c.reason ??= 'idle_timeout'; s.end(1001, 'idle timeout'); continue; }
        if (silent >= o.idleTimeoutMs / 2 && !c.pinged) { c.pinged = true; s.ping(); }
        earliest = Math.min(earliest, idle.dueAt(c.seen, c.pinged));
      }
      idle.scanned(now, earliest);
    }, sweepMs);
    sweep.unref();

    /*
     * --port 0: we take a free port and ask uSockets for it by number. Given port 0, uSockets (20.30) evidently sets no SO_REUSEADDR on
     * the listener, and the TIME_WAIT its closed connections leave then blocks a new server on the port the ready line
     * reported (measured: a uws restarted on it after holding 1,000 connections failed with "in use"; one first
     * started on an explicit port restarted fine) — the restart every deploy does, and the lab's reconnect-storm.
     */
    const listenPort = o.port === 0 ? await freePort(o.host) : o.port;
    const token = await new Promise<unknown>((resolve, reject) => {
      app.listen(o.host, listenPort, (t) => (t ? resolve(t) : reject(Object.assign(
        new Error(`uws: cannot listen on ${o.host}:${listenPort} (in use, or not a local address)`), { code: 'EADDRINUSE' }))));
    });
    const port = uws.us_socket_local_port(token as never);

    return {
      port,
      version,
      ...localMetrics(metrics.registry),
      async close() {
        clearInterval(sweep);
        uws.us_listen_socket_close(token as never);
        for (const s of open) { s.getUserData().reason ??= 'going_away'; s.end(1001, 'server shutting down'); }
        // Wait (bounded) for close handshakes, then drop whoever did not answer.
        for (let waited = 0; open.size > 0 && waited < 2000; waited += 20) await new Promise((r) => setTimeout(r, 20));
        for (const s of open) s.close();
        metrics.close();
      },
    };
  },
});

/**
 * uWS never sends 1002/1007/1009: a close it decides by itself (a protocol violation, an oversize message, invalid
 * UTF-8) ends the TCP connection and reaches `close` as 1006, told apart from a dropped connection only by uWS's
 * message text, which it sets for the last two. Any other code is the one the client closed with, whatever it is
 * (a client may close with 1002 itself): a close the client started is `normal`.
 */
const UWS_TOO_BIG = 'Received too big message';
const UWS_INVALID_UTF8 = 'Received invalid UTF-8';
function reasonOf(code: number, message: ArrayBuffer): CloseReason {
  if (code !== 1006) return 'normal';
  const text = message.byteLength ? decoder.decode(message) : '';
  return text.startsWith(UWS_TOO_BIG) ? 'too_big' : text === UWS_INVALID_UTF8 ? 'protocol_error' : 'error';
}
