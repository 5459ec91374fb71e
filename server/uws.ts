import { performance } from 'node:perf_hooks';
import type { CloseReason, Command } from '../metrics/index.js';
import { localMetrics, type Design, type DesignHandle } from './design.js';
import { ServerMetrics } from './metrics.js';
import type { ServeOptions } from './options.js';
import { dispatch } from './protocol.js';
import { loadUws } from './uws-loader.js';

/** Per-connection state, uWS's userData: three fields, nothing else is kept per connection. */
interface Conn {
  seen: number;
  pinged: boolean;
  reason: CloseReason | undefined;
}
type UwsSocket = import('@trufflesuite/uws-js-unofficial').WebSocket<Conn>;

const SEND_BACKPRESSURE = 0;
const SEND_DROPPED = 2;
const decoder = new TextDecoder();

export const uwsDesign: Design = {
  name: 'uws',
  model: 'loop',
  summary: 'single event loop, uWebSockets.js (C++ sockets, JS handlers)',
  async start(o: ServeOptions): Promise<DesignHandle> {
    const { uws, version } = loadUws();
    // uWS hands out no collection of its sockets; this set is what shutdown and the gauges walk.
    const open = new Set<UwsSocket>();
    // Sockets that have had to buffer a send: the gauge and the slow-reader check walk these, not every socket.
    const backlogged = new Set<UwsSocket>();
    const metrics = new ServerMetrics(o.design, {
      open: () => open.size,
      bufferedBytes: () => { let sum = 0; for (const s of backlogged) sum += s.getBufferedAmount(); return sum; },
    });

    const end = (s: UwsSocket, reason: CloseReason): void => {
      s.getUserData().reason ??= reason;
      s.close();
    };
    /** Sends, or drops the reply and ends the connection when it is over --max-backpressure. */
    const sent = (s: UwsSocket, data: string | ArrayBuffer, binary: boolean): boolean => {
      const status = s.getBufferedAmount() > o.maxBackpressure ? SEND_DROPPED : s.send(data, binary);
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
      compression: uws.DISABLED,
      maxPayloadLength: o.maxPayload,
      maxBackpressure: o.maxBackpressure,
      /*
       * Idle detection is ours, not uWS's: its idleTimeout has a 4 s granularity, accepts only 0 or ≥ 8 s and aborts
       * the process on other values. The sweep below gives uws the same semantics as the other designs (ping at
       * half, close with 1001 "idle timeout" at the full timeout) and lets us count the reason.
       */
      idleTimeout: 0,
      sendPingsAutomatically: false,
      upgrade: (res, req, context) => {
        const t0 = performance.now();
        res.upgrade<Conn>(
          { seen: t0, pinged: false, reason: undefined },
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
        open.delete(s);
        backlogged.delete(s);
        metrics.closed(s.getUserData().reason ?? reasonOf(code, message));
      },
    }).any('/*', (res) => {
      res.writeStatus('426 Upgrade Required').writeHeader('upgrade', 'websocket').end('wslab: WebSocket upgrade required\n');
    });

    const sweepMs = o.idleTimeoutMs > 0 ? Math.max(100, Math.min(1000, o.idleTimeoutMs / 4)) : 1000;
    const sweep = setInterval(() => {
      for (const s of backlogged) if (s.getBufferedAmount() > o.maxBackpressure) end(s, 'backpressure');
      if (o.idleTimeoutMs <= 0) return;
      const now = performance.now();
      for (const s of open) {
        const c = s.getUserData();
        const silent = now - c.seen;
        if (silent >= o.idleTimeoutMs) { c.reason ??= 'idle_timeout'; s.end(1001, 'idle timeout'); }
        else if (silent >= o.idleTimeoutMs / 2 && !c.pinged) { c.pinged = true; s.ping(); }
      }
    }, sweepMs);
    sweep.unref();

    const token = await new Promise<unknown>((resolve, reject) => {
      app.listen(o.host, o.port, (t) => (t ? resolve(t) : reject(Object.assign(
        new Error(`uws: cannot listen on ${o.host}:${o.port} (in use, or not a local address)`), { code: 'EADDRINUSE' }))));
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
};

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
