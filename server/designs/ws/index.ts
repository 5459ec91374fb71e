import http from 'node:http';
import type { Socket } from 'node:net';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import type { CloseReason, Command } from '../../../metrics/index.js';
import { AddressLimit } from '../../address-limit.js';
import { IdleSweep } from '../../idle-sweep.js';
import { defineDesign, localMetrics, type DesignHandle } from '../../design.js';
import { option } from '../../../core/flags.js';
import { parseInteger } from '../../../core/units.js';
import { UsageError } from '../../../core/errors.js';
import { listen, closeHttp } from '../../../core/net.js';
import { ServerMetrics } from '../../metrics.js';
import type { ServeOptions } from '../../options.js';
import { dispatch } from '../../protocol.js';
import { MAX_REQUEST_HEAD, REFUSED, refusalHeaders, refusalOf, refusalResponse, type Refusal, type UpgradeRequest } from '../../upgrade-check.js';

const WS_VERSION: string = createRequire(import.meta.url)('ws/package.json').version;

// Per-connection state lives on the ws object under symbols: no side maps, no per-connection closures.
const SEEN = Symbol('lastFrameMs');
const PINGED = Symbol('pinged');
const REASON = Symbol('closeReason');
const DEADLINE = Symbol('handshakeDeadline');
const ADDRESS = Symbol('limitedAddress'); // set while the socket counts against --max-conns-per-ip
// From accept until the upgrade is answered (101, a refusal, or the handshake timeout): a TCP close meanwhile is
// counted as 'error', as the thread design counts it, so every accepted connection ends once in the close counter.
const PENDING = Symbol('handshakePending');
type Tcp = Socket & { [DEADLINE]?: NodeJS.Timeout; [ADDRESS]?: string; [PENDING]?: boolean };
function clearDeadline(this: Tcp): void {
  clearTimeout(this[DEADLINE]);
  this[DEADLINE] = undefined;
}
const upgradeRequest = ({ method, headers: h }: http.IncomingMessage): UpgradeRequest => ({
  method: method ?? '', upgrade: h.upgrade, connection: h.connection, key: h['sec-websocket-key'], version: h['sec-websocket-version'],
});
type Conn = WebSocket & { [SEEN]: number; [PINGED]: boolean; [REASON]?: CloseReason };

/**
 * ws's receiver error codes that mean the client sent too much: a message over --max-payload (also while inflating
 * one) or more fragments than --max-fragments (ws closes that with 1008). Other WS_ERR_ codes break the protocol;
 * anything else is an I/O error.
 */
const TOO_BIG = new Set(['WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH', 'WS_ERR_TOO_MANY_BUFFERED_PARTS']);

/**
 * --deflate: ws's own defaults (zlib level and memLevel, 1 KiB threshold) but no compression context carried between
 * messages either way, as uWS's shared compressor and decompressor work. ws still keeps each connection's zlib
 * streams once made (reset after each message, not freed): measured here, 10,000 connections that had each received
 * one compressed 2 KiB reply held ≈223 KiB more apiece (2.2 GiB), where uws held 0.4 KiB — the cost that made
 * engine.io turn compression off by default. Idle connections that never compressed cost nothing more. Inflation
 * stops at maxPayload: a small frame that inflates past it closes with 1009.
 */
const DEFLATE = Object.freeze({ serverNoContextTakeover: true, clientNoContextTakeover: true });

/** ws's own default for the fragments of one message is 16,384: ≈2 MiB of heap a connection may pin (ws #2331). */
const MAX_FRAGMENTS = 1024;

export const wsDesign = defineDesign({
  name: 'ws',
  model: 'loop',
  summary: 'single event loop, the ws library on node:http',
  flags: {
    maxFragments: option({
      flag: 'max-fragments', type: 'number', default: MAX_FRAGMENTS,
      describe: 'ws: fragments one message may have; more closes with 1008 (ws keeps each as its own Buffer; --no-defenses: no limit)',
      parse: (raw) => parseInteger('max-fragments', raw, 1, 1_000_000),
    }),
  },
  traits: () => ({ model: 'loop', fixedHandshakeTimeout: null, dialect: 'ws', workers: 1, countsNonHttp: true, deflate: true }),
  validate: (o) => {
    if (!o.defenses && o.own.maxFragments !== MAX_FRAGMENTS) throw new UsageError('--no-defenses turns every limit off, so it conflicts with --max-fragments: drop one or the other');
  },
  async start(o: ServeOptions): Promise<DesignHandle> {
    // maxPayload 0 (--no-defenses) is ws's "no limit"; so are maxFragments and maxBufferedChunks 0: naked, a message's
    // fragments pile up as one Buffer each (≈100 B of heap beyond its payload: ws #2331).
    const wss = new WebSocketServer({
      noServer: true, maxPayload: o.maxPayload, clientTracking: true,
      maxFragments: o.defenses ? o.own.maxFragments as number : 0, ...(o.defenses ? {} : { maxBufferedChunks: 0 }),
      perMessageDeflate: o.deflate ? DEFLATE : false,
    });
    const clients = wss.clients as Set<Conn>;
    // Connections whose send had to buffer; the sweep prunes those that drained. Gauge and slow-reader checks walk
    // only these, so a scrape with 19.5k idle connections does not touch each one.
    const backlogged = new Set<Conn>();
    const metrics = new ServerMetrics(o.design, {
      open: () => clients.size,
      bufferedBytes: () => { let sum = 0; for (const c of backlogged) sum += c.bufferedAmount; return sum; },
    }, { defenses: o.defenses });

    const endAs = (c: Conn, reason: CloseReason, code: number, text: string): void => {
      c[REASON] = reason;
      c.close(code, text);
    };
    /*
     * Backpressure: ws buffers without limit (MACHINE.md: +100 MB in 18 s for a never-reading client), so the cap is
     * ours. Past --max-backpressure the reply is dropped and the connection ends as a slow reader: the 1008 frame is
     * queued, then the socket is destroyed, since a client that does not read would never see it anyway.
     */
    /** Sends a reply (text) or an echo (binary); `respond` for the protocol, the binary path for echoes. */
    const respond = (c: Conn, reply: string | Buffer, command: Command, started: number): void => {
      if (c.readyState !== WebSocket.OPEN) return;
      if (o.maxBackpressure > 0 && c.bufferedAmount > o.maxBackpressure) {
        metrics.sendDropped.inc();
        return slowReader(c);
      }
      const binary = typeof reply !== 'string';
      c.send(reply, { binary });
      if (c.bufferedAmount > 0) backlogged.add(c);
      metrics.messagesSent.inc();
      metrics.bytesSent.inc(binary ? reply.length : Buffer.byteLength(reply));
      metrics.command(command, started, performance.now());
    };
    const slowReader = (c: Conn): void => {
      endAs(c, 'backpressure', 1008, 'backpressure');
      c.terminate();
    };

    function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
      const c = this as Conn;
      const buf = data as Buffer;
      c[SEEN] = performance.now();
      metrics.messagesReceived.inc();
      metrics.bytesReceived.inc(buf.length);
      if (!isBinary) return dispatch(c, buf.toString(), respond);
      respond(c, buf, 'binary', performance.now());
    }
    function onAlive(this: WebSocket): void {
      (this as Conn)[SEEN] = performance.now();
      (this as Conn)[PINGED] = false;
    }
    function onError(this: WebSocket, err: Error & { code?: string }): void {
      (this as Conn)[REASON] ??= TOO_BIG.has(err.code ?? '') ? 'too_big' : err.code?.startsWith('WS_ERR_') ? 'protocol_error' : 'error';
    }
    function onClose(this: WebSocket, code: number): void {
      // Whoever decided first names the reason; a close the client started is normal unless the TCP just dropped.
      backlogged.delete(this as Conn);
      metrics.closed((this as Conn)[REASON] ?? (code === 1006 ? 'error' : 'normal'));
    }

    /*
     * Refusals (docs/defenses.md): every bad upgrade is answered with the status upgrade-check.ts gives, counted by
     * cause, and closed. We check before ws does, so the statuses and counts match the other designs (ws alone
     * would accept version 8 and answer a plain GET with whatever the request handler says).
     */
    const rejected = (socket: Tcp, r: Refusal): void => {
      socket[PENDING] = false;
      clearDeadline.call(socket);
      metrics.rejected(r.reason);
    };
    const refuse = (socket: Tcp, r: Refusal): void => {
      rejected(socket, r);
      socket.once('finish', socket.destroy);
      socket.end(refusalResponse(r));
    };
    const server = http.createServer({ maxHeaderSize: MAX_REQUEST_HEAD }, (req, res) => {
      const r = refusalOf(upgradeRequest(req)) ?? REFUSED.notUpgrade;
      rejected(req.socket as Tcp, r);
      res.shouldKeepAlive = false;
      res.writeHead(r.status, { 'content-type': 'text/plain', connection: 'close', ...refusalHeaders(r) }).end(`wslab: ${r.message}\n`);
    });
    if (!o.defenses) {
      // Naked: Node's own request timeouts (headers 60 s, request 300 s) go too; requestTimeout first, as Node checks
      // headersTimeout <= requestTimeout.
      server.requestTimeout = 0;
      server.headersTimeout = 0;
    }
    // The parser's refusals: a head over MAX_REQUEST_HEAD, or bytes that are not HTTP.
    server.on('clientError', (err: Error & { code?: string }, socket: Tcp) => {
      if (!socket.writable || !err.code?.startsWith('HPE_')) return void socket.destroy();
      refuse(socket, err.code === 'HPE_HEADER_OVERFLOW' ? REFUSED.headersTooLarge : REFUSED.malformed);
    });
    // What ws still refuses after our check (e.g. a malformed Sec-WebSocket-Protocol) is counted too.
    wss.on('wsClientError', (_err, socket) => refuse(socket as Tcp, REFUSED.malformed));
    /*
     * Handshake timeout: a deadline from accept, not an inactivity timer, so a slowloris that dribbles a header
     * line every few hundred ms is cut all the same. The timer exists only while the handshake is pending.
     * --max-conns-per-ip counts TCP connections from accept to close, as the thread design does, and answers one over
     * the limit with 429 at once, without waiting for its request: an address over the limit costs an accept, not a
     * socket held until the handshake timeout.
     */
    const perIp = new AddressLimit(o.maxConnsPerIp);
    server.on('connection', (s: Tcp) => {
      if (o.maxConnsPerIp > 0) {
        const address = s.remoteAddress ?? '';
        if (!perIp.acquire(address)) return refuse(s, REFUSED.connLimit);
        s[ADDRESS] = address;
      }
      s[PENDING] = true;
      if (o.handshakeTimeoutMs > 0) s[DEADLINE] = setTimeout(handshakeExpired, o.handshakeTimeoutMs, s);
      s.once('close', onTcpClose);
    });
    const onTcpClose = function (this: Tcp): void {
      clearDeadline.call(this);
      if (this[ADDRESS] !== undefined) perIp.release(this[ADDRESS]);
      if (this[PENDING]) metrics.closed('error');
    };
    const handshakeExpired = (s: Tcp): void => {
      s[PENDING] = false;
      metrics.closed('handshake_timeout');
      s.destroy();
    };
    server.on('upgrade', (req, socket: Tcp, head) => {
      const t0 = performance.now();
      clearDeadline.call(socket);
      const refused = refusalOf(upgradeRequest(req));
      if (refused) return refuse(socket, refused);
      // ws may still drop the socket without calling back (it closed meanwhile): then it stays PENDING, an 'error'.
      wss.handleUpgrade(req, socket, head, (ws) => {
        socket[PENDING] = false;
        const c = ws as Conn;
        metrics.handshake.observe((performance.now() - t0) / 1000);
        metrics.accepted.inc();
        c[SEEN] = performance.now();
        c[PINGED] = false;
        c.on('message', onMessage);
        c.on('pong', onAlive);
        c.on('ping', onAlive);
        c.on('error', onError);
        c.on('close', onClose);
      });
    });

    /*
     * One sweep for every connection instead of a timer each: idle clients get a ping at half the idle timeout and
     * are closed at the full one, the scan skipped while nothing can be due (server/idle-sweep.ts); slow readers over
     * the cap are found even when no reply is being sent.
     */
    const sweepMs = o.idleTimeoutMs > 0 ? Math.max(100, Math.min(1000, o.idleTimeoutMs / 4)) : 1000;
    const idle = new IdleSweep(o.idleTimeoutMs);
    const sweep = setInterval(() => {
      for (const c of backlogged) {
        if (c.bufferedAmount === 0) backlogged.delete(c);
        else if (o.maxBackpressure > 0 && c.bufferedAmount > o.maxBackpressure) slowReader(c);
      }
      const now = performance.now();
      if (!idle.due(now)) return;
      let earliest = Infinity;
      for (const c of clients) {
        if (c.readyState !== WebSocket.OPEN) continue;
        const silent = now - c[SEEN];
        if (silent >= o.idleTimeoutMs) { endAs(c, 'idle_timeout', 1001, 'idle timeout'); c.terminate(); continue; }
        if (silent >= o.idleTimeoutMs / 2 && !c[PINGED]) { c[PINGED] = true; c.ping(); }
        earliest = Math.min(earliest, idle.dueAt(c[SEEN], c[PINGED]));
      }
      idle.scanned(now, earliest);
    }, sweepMs);
    sweep.unref();

    const port = await listen(server, o.host, o.port);
    return {
      port,
      version: `ws ${WS_VERSION}`,
      ...localMetrics(metrics.registry),
      async close() {
        clearInterval(sweep);
        for (const c of clients) endAs(c, 'going_away', 1001, 'server shutting down');
        await closeHttp(server, () => { for (const c of clients) c.terminate(); });
        metrics.close();
      },
    };
  },
});
