/**
 * The server of bench/wss-hold.ts: a `ws` WebSocketServer over node:https with the certificate the bench made
 * (openssl, self-signed), holding whatever connects and echoing what it is sent. A foreign server on purpose: TLS
 * is not one of our designs. Prints `{"event":"listening","port":N}`; bounded like the bench clients (10 min).
 *
 *   node dist/bench/clients/tls-server.js '{"key":"…/key.pem","cert":"…/cert.pem"}'
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const a = JSON.parse(process.argv[2] ?? '{}') as { key: string; cert: string };
// GET /count: upgraded connections open now (what the bench polls; TCP counts would include unfinished handshakes)
const https = createServer({ key: readFileSync(a.key), cert: readFileSync(a.cert) }, (_req, res) => res.end(String(wss.clients.size)));
const wss = new WebSocketServer({ server: https, perMessageDeflate: false });
wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
https.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  process.stdout.write(`${JSON.stringify({ event: 'listening', port: (https.address() as AddressInfo).port, pid: process.pid })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
setTimeout(() => process.exit(0), 10 * 60_000).unref();
