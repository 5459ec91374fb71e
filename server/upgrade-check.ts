import type { RejectReason } from '../metrics/index.js';

/**
 * Refusing bad HTTP upgrades the same way in every design (docs/defenses.md): one check, one status per cause, and a
 * response that says `Connection: close` because the server closes right after it. The native thread design has its
 * C++ twin in native/src/handshake.cc.
 */

/** Largest request head (request line and headers) a design accepts; a larger one is refused with 431. */
export const MAX_REQUEST_HEAD = 8 * 1024;

export interface Refusal {
  readonly status: number;
  readonly reason: RejectReason;
  readonly message: string;
}

/** What the check needs of a request; header values as received, undefined when absent. */
export interface UpgradeRequest {
  readonly method: string;
  readonly upgrade?: string;
  readonly connection?: string;
  readonly key?: string;
  readonly version?: string;
}

export const REFUSED = Object.freeze({
  method: { status: 405, reason: 'method', message: 'method must be GET' },
  notUpgrade: { status: 426, reason: 'bad_request', message: 'WebSocket upgrade required (Upgrade: websocket, Connection: upgrade)' },
  key: { status: 400, reason: 'bad_request', message: 'Sec-WebSocket-Key missing or invalid' },
  version: { status: 400, reason: 'bad_version', message: 'Sec-WebSocket-Version: 13 required' },
  malformed: { status: 400, reason: 'bad_request', message: 'malformed HTTP request' },
  headersTooLarge: { status: 431, reason: 'headers_too_large', message: 'request head over 8 KiB' },
  connLimit: { status: 429, reason: 'conn_limit', message: 'too many connections from your address (--max-conns-per-ip)' },
} satisfies Record<string, Refusal>);

// A key is base64 of 16 bytes: 22 base64 characters and "==" (as ws and the native handshake check it).
const KEY = /^[+/0-9A-Za-z]{22}==$/;
const hasToken = (value: string | undefined, token: string): boolean =>
  value !== undefined && value.split(',').some((t) => t.trim().toLowerCase() === token);

/** Why an upgrade request must be refused, in the order the native handshake checks; undefined when it is fine. */
export function refusalOf(r: UpgradeRequest): Refusal | undefined {
  if (r.method !== 'GET') return REFUSED.method;
  if (!hasToken(r.upgrade, 'websocket') || !hasToken(r.connection, 'upgrade')) return REFUSED.notUpgrade;
  if (r.key === undefined || !KEY.test(r.key.trim())) return REFUSED.key;
  if (r.version?.trim() !== '13') return REFUSED.version;
  return undefined;
}

/** Extra headers a refusal carries: RFC 6455 §4.4 names the versions served; a 426 names the protocol to use. */
export function refusalHeaders(r: Refusal): Record<string, string> {
  return r === REFUSED.version ? { 'Sec-WebSocket-Version': '13' } : r.status === 426 ? { Upgrade: 'websocket' } : {};
}

/** The whole HTTP response for a refusal, for designs that write to the raw socket. */
export function refusalResponse(r: Refusal): string {
  const body = `wslab: ${r.message}\n`;
  const headers = { Connection: 'close', 'Content-Type': 'text/plain', 'Content-Length': String(Buffer.byteLength(body)), ...refusalHeaders(r) };
  return `HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status]}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`;
}

export const STATUS_TEXT: Readonly<Record<number, string>> = Object.freeze({
  400: 'Bad Request', 405: 'Method Not Allowed', 426: 'Upgrade Required', 429: 'Too Many Requests',
  431: 'Request Header Fields Too Large', 503: 'Service Unavailable',
});
