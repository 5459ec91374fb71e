import { spec, LATENCY_BUCKETS } from './spec.js';

/** Why a server-side connection ended: the `reason` label of {@link CONNECTIONS_CLOSED}. */
export const CLOSE_REASONS = Object.freeze([
  'normal', 'going_away', 'protocol_error', 'too_big', 'idle_timeout', 'backpressure', 'handshake_timeout', 'error',
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
  help: 'Connections ended, by reason (normal, going_away, protocol_error, too_big, idle_timeout, backpressure, handshake_timeout, error).',
  type: 'counter', labelNames: ['design', 'reason'], aggregator: 'sum',
});
export const HANDSHAKE_DURATION = spec({
  name: 'wslab_handshake_duration_seconds',
  help: 'Server-side handshake time: from a complete HTTP upgrade request to its 101 Switching Protocols response.',
  type: 'histogram', labelNames: ['design'], buckets: LATENCY_BUCKETS, aggregator: 'sum',
});
