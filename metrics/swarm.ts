import { spec, LATENCY_BUCKETS } from './spec.js';

/** Why a swarm connection attempt failed or a held connection was lost: the `cause` label. */
export const SWARM_CAUSES = Object.freeze([
  'EMFILE', 'EADDRNOTAVAIL', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'handshake_rejected', 'handshake_timeout',
  'protocol_error', 'closed_by_server', 'tls_certificate', 'tls_handshake', 'worker_died', 'other',
] as const);
export type SwarmCause = (typeof SWARM_CAUSES)[number];

/**
 * What became of an attacker (client/attacks.ts): the `outcome` label. `closed` the server sent a close frame
 * (its code is the `code` label of {@link SWARM_ATTACK_CLOSE_CODES}), `ended` it ended TCP without one, `reset` an
 * RST or a failed write, `rejected` a non-101 answer to the upgrade, `failed` never connected (or the server broke
 * RFC 6455), `dropped` conn-flood: opened, then dropped by the swarm. Attackers still connected at the end are
 * `held` (the summary) and {@link SWARM_ATTACKERS_HELD} (now).
 */
export const ATTACK_OUTCOMES = Object.freeze(['closed', 'ended', 'reset', 'rejected', 'failed', 'dropped'] as const);
export type AttackOutcome = (typeof ATTACK_OUTCOMES)[number];
/** Close codes the server sent to attackers, the `code` label: the RFC 6455 codes a server uses, the rest as `other`. */
export const ATTACK_CLOSE_CODES = Object.freeze(['1000', '1001', '1002', '1003', '1007', '1008', '1009', '1011', 'other'] as const);
export type AttackCloseCode = (typeof ATTACK_CLOSE_CODES)[number];

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
export const SWARM_MESSAGES_PUSHED = spec({
  name: 'wslab_swarm_messages_pushed_total',
  help: 'Server messages that answered no request of the swarm (pushes; with --send, replies --match could not pair).',
  type: 'counter', labelNames: [], aggregator: 'sum',
});
export const SWARM_EVENT_LOOP_DELAY = spec({
  name: 'wslab_swarm_event_loop_delay_seconds',
  help: 'Event-loop delay of the swarm process since the previous scrape, by quantile (how late a 100 ms timer fired): high values mean the client is the bottleneck.',
  type: 'gauge', labelNames: ['quantile'], aggregator: 'max',
});
export const SWARM_ATTACKERS_HELD = spec({
  name: 'wslab_swarm_attackers_held',
  help: 'Attackers still connected now (slowloris dribbling, or open), by attack profile.',
  type: 'gauge', labelNames: ['profile'], aggregator: 'sum',
});
export const SWARM_ATTACK_OUTCOMES = spec({
  name: 'wslab_swarm_attack_outcomes_total',
  help: 'Attackers ended, by attack profile and outcome (closed, ended, reset, rejected, failed, dropped).',
  type: 'counter', labelNames: ['profile', 'outcome'], aggregator: 'sum',
});
export const SWARM_ATTACK_CLOSE_CODES = spec({
  name: 'wslab_swarm_attack_close_codes_total',
  help: 'Close frames the server sent to attackers, by attack profile and close code (1001, 1002, 1007, 1008, 1009, other).',
  type: 'counter', labelNames: ['profile', 'code'], aggregator: 'sum',
});
export const SWARM_ATTACK_TIME_TO_CUT = spec({
  name: 'wslab_swarm_attack_time_to_cut_seconds',
  help: "Time from an attacker's connect() to the server ending it (closed, ended, reset or rejected), by attack profile.",
  type: 'histogram', labelNames: ['profile'], buckets: LATENCY_BUCKETS, aggregator: 'sum',
});
