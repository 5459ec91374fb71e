import { spec, LATENCY_BUCKETS } from './spec.js';

/**
 * Why a server-side connection ended: the `reason` label of {@link CONNECTIONS_CLOSED}. `rejected` is a TCP
 * connection whose upgrade was refused with an HTTP error (its cause is in {@link HANDSHAKES_REJECTED}). The native
 * thread design keeps the same list in native/src/counters.h, in this order.
 */
export const CLOSE_REASONS = Object.freeze([
  'normal', 'going_away', 'protocol_error', 'too_big', 'idle_timeout', 'backpressure', 'handshake_timeout', 'error',
  'rejected',
] as const);
export type CloseReason = (typeof CLOSE_REASONS)[number];

export const CONNECTIONS_OPEN = spec({
  name: 'wslab_connections_open',
  help: 'WebSocket connections open now (handshake completed, not yet closed).',
  type: 'gauge', labelNames: ['design'], aggregator: 'sum',
});
export const CONNECTIONS_ACCEPTED = spec({
  name: 'wslab_connections_accepted_total',
  help: 'WebSocket handshakes completed since start.',
  type: 'counter', labelNames: ['design'], aggregator: 'sum',
});
export const CONNECTIONS_CLOSED = spec({
  name: 'wslab_connections_closed_total',
  help: 'Connections ended, by reason (normal, going_away, protocol_error, too_big, idle_timeout, backpressure, handshake_timeout, error, rejected).',
  type: 'counter', labelNames: ['design', 'reason'], aggregator: 'sum',
});
export const HANDSHAKE_DURATION = spec({
  name: 'wslab_handshake_duration_seconds',
  help: 'Server-side handshake time: from a complete HTTP upgrade request to its 101 Switching Protocols response.',
  type: 'histogram', labelNames: ['design'], buckets: LATENCY_BUCKETS, aggregator: 'sum',
});

/**
 * Why an HTTP upgrade was refused: the `reason` label of {@link HANDSHAKES_REJECTED}, with the status every design
 * answers (docs/defenses.md): `method` 405 (not GET), `bad_request` 400/426 (no `Upgrade: websocket`, a missing or
 * malformed Sec-WebSocket-Key, an unparsable request), `bad_version` 400 (Sec-WebSocket-Version not 13),
 * `headers_too_large` 431 (request head over 8 KiB), `conn_limit` 429 (over --max-conns-per-ip), `queue_full` 503
 * (threads --pool: the accept queue is full). The native thread design keeps this list in counters.h, in this order.
 */
export const REJECT_REASONS = Object.freeze([
  'bad_request', 'bad_version', 'method', 'headers_too_large', 'conn_limit', 'queue_full',
] as const);
export type RejectReason = (typeof REJECT_REASONS)[number];

export const HANDSHAKES_REJECTED = spec({
  name: 'wslab_handshakes_rejected_total',
  help: 'HTTP upgrade requests refused with a 4xx/503 answer and a close, by reason (bad_request, bad_version, method, headers_too_large, conn_limit, queue_full).',
  type: 'counter', labelNames: ['design', 'reason'], aggregator: 'sum',
});
export const SERVER_INFO = spec({
  name: 'wslab_server_info',
  help: 'Always 1; its `defenses` label says whether the server runs with its limits (on) or naked under --no-defenses (off).',
  type: 'gauge', labelNames: ['design', 'defenses'], aggregator: 'max',
});
