import { spec, LATENCY_BUCKETS } from './spec.js';

/** Why a swarm connection attempt failed or a held connection was lost: the `cause` label. */
export const SWARM_CAUSES = Object.freeze([
  'EMFILE', 'EADDRNOTAVAIL', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'handshake_rejected', 'handshake_timeout',
  'protocol_error', 'closed_by_server', 'other',
] as const);
export type SwarmCause = (typeof SWARM_CAUSES)[number];

export const SWARM_OPEN = spec({
  name: 'wslab_swarm_connections_open',
  help: 'Swarm connections open now (handshake completed).',
  type: 'gauge', labelNames: [], aggregator: 'sum',
});
export const SWARM_CONNECTING = spec({
  name: 'wslab_swarm_connecting',
  help: 'Swarm connections in the TCP connect or HTTP upgrade phase now.',
  type: 'gauge', labelNames: [], aggregator: 'sum',
});
export const SWARM_TARGET = spec({
  name: 'wslab_swarm_target',
  help: 'Connections the swarm was asked to open and hold.',
  type: 'gauge', labelNames: [], aggregator: 'sum',
});
export const SWARM_ERRORS = spec({
  name: 'wslab_swarm_errors_total',
  help: 'Failed connection attempts and lost connections, by cause.',
  type: 'counter', labelNames: ['cause'], aggregator: 'sum',
});
export const SWARM_CONNECT_DURATION = spec({
  name: 'wslab_swarm_connect_duration_seconds',
  help: 'Time from connect() to a verified 101 Switching Protocols response.',
  type: 'histogram', labelNames: [], buckets: LATENCY_BUCKETS, aggregator: 'sum',
});
export const SWARM_RTT = spec({
  name: 'wslab_swarm_rtt_seconds',
  help: 'Round-trip time of protocol commands, measured from the intended send time (coordinated-omission corrected).',
  type: 'histogram', labelNames: [], buckets: LATENCY_BUCKETS, aggregator: 'sum',
});
export const SWARM_MESSAGES_SENT = spec({
  name: 'wslab_swarm_messages_sent_total',
  help: 'Protocol commands sent by the swarm.',
  type: 'counter', labelNames: [], aggregator: 'sum',
});
export const SWARM_MESSAGES_RECEIVED = spec({
  name: 'wslab_swarm_messages_received_total',
  help: 'Replies received by the swarm.',
  type: 'counter', labelNames: [], aggregator: 'sum',
});
export const SWARM_EVENT_LOOP_DELAY = spec({
  name: 'wslab_swarm_event_loop_delay_seconds',
  help: 'Event-loop delay of the swarm process since the previous scrape, by quantile: high values mean the client is the bottleneck.',
  type: 'gauge', labelNames: ['quantile'], aggregator: 'max',
});
