/**
 * `--web [port]` on `wslab lab`, `wslab swarm` and `wslab serve`: one page, served by the run itself, that draws the
 * run's series live. The run publishes messages (web/messages.ts); every page gets the history so far when it
 * connects, then each message as it is published, over a WebSocket on /live (the `ws` package). Nothing runs
 * between publishes: no timer of its own, and a run nobody watches pays one JSON.stringify per message.
 */
import http from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { UsageError } from '../core/errors.js';
import { closeHttp, hostForUrl, listen } from '../core/net.js';
import type { LiveMessage } from './messages.js';
import type { WebOptions } from './options.js';
import { livePage } from './page.js';

/** Point messages kept for a page that connects late; past it, every other point of each line is dropped. */
const HISTORY_POINTS = 40_000;

export class LiveWeb {
  private readonly history: { text: string; group?: string }[] = [];
  private points = 0;
  private ended = false;

  private constructor(private readonly server: http.Server, private readonly wss: WebSocketServer, readonly url: string) {}

  /**
   * Binds the page's port before the run does any work: a taken port is one line naming the way out (`--web 0`).
   * `title` heads the page (`wslab lab`, `wslab swarm 10,000 → ws://…`).
   */
  static async open(o: WebOptions, title: string): Promise<LiveWeb> {
    const html = await livePage(title);
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && (path === '/' || path === '/index.html')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('wslab --web: the live view is at /, its data on ws /live\n');
      }
    });
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4096 });
    server.on('upgrade', (req, socket, head) => {
      if ((req.url ?? '').split('?')[0] !== '/live') {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => web.join(ws));
    });
    let port: number;
    try {
      port = await listen(server, o.host, o.port);
    } catch (err) {
      throw new UsageError(`--web: cannot serve the live view on ${o.host}:${o.port}: ${(err as Error).message} (use --web 0 for any free port)`);
    }
    const web = new LiveWeb(server, wss, `http://${hostForUrl(o.host)}:${port}/`);
    return web;
  }

  /**
   * Sends `m` to every page and keeps it for pages that connect later. `group` names the line a point belongs to
   * (a design within a scenario): when the history is full, each group keeps every other point, so a late page
   * still sees the whole run at half the resolution.
   */
  publish(m: LiveMessage, group?: string): void {
    if (this.ended) return;
    const text = JSON.stringify(m);
    this.history.push({ text, group });
    if (group !== undefined && ++this.points > HISTORY_POINTS) this.thin();
    for (const ws of this.wss.clients) if (ws.readyState === ws.OPEN) ws.send(text);
  }

  /**
   * Publishes `last` (the run's end), waits until every page has it (at most 2 s), then closes the pages with 1000
   * and stops serving. The pages keep what they drew.
   */
  async close(last: LiveMessage): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    const text = JSON.stringify(last);
    this.history.push({ text });
    const flushed = [...this.wss.clients].map((ws) => new Promise<void>((resolve) => {
      if (ws.readyState !== ws.OPEN) return resolve();
      ws.send(text, () => resolve()); // called once written: every message before it was written too
      ws.once('close', () => resolve());
    }));
    const timer = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref());
    await Promise.race([Promise.all(flushed), timer]);
    for (const ws of this.wss.clients) ws.close(1000, 'run ended');
    await closeHttp(this.server, () => {
      for (const ws of this.wss.clients) ws.terminate();
      this.server.closeAllConnections();
    }, 1000);
    this.wss.close();
  }

  private join(ws: WebSocket): void {
    ws.on('error', () => undefined); // a page that goes away: nothing to do
    ws.on('message', () => undefined); // pages only listen
    // the history as one array: the page draws it in one go
    ws.send(`[${this.history.map((h) => h.text).join(',')}]`);
    if (this.ended) ws.close(1000, 'run ended');
  }

  private thin(): void {
    const seen = new Map<string, number>();
    let kept = 0;
    let j = 0;
    for (const h of this.history) {
      if (h.group !== undefined) {
        const n = seen.get(h.group) ?? 0;
        seen.set(h.group, n + 1);
        if (n % 2 === 1) continue;
        kept++;
      }
      this.history[j++] = h;
    }
    this.history.length = j;
    this.points = kept;
  }
}
