import { spec, LATENCY_BUCKETS } from './spec.js';

/** The `command` label of {@link COMMAND_DURATION}: the protocol verbs, binary echo, and rejected requests. */
export const COMMANDS = Object.freeze(['echo', 'wait', 'block', 'cpu', 'fill', 'binary', 'invalid'] as const);
export type Command = (typeof COMMANDS)[number];

export const MESSAGES_RECEIVED = spec({
  name: 'wslab_messages_received_total',
  help: 'WebSocket data messages (text and binary) received from clients.',
  type: 'counter', labelNames: ['design'], aggregator: 'sum',
});
export const MESSAGES_SENT = spec({
  name: 'wslab_messages_sent_total',
  help: 'WebSocket data messages (text and binary) sent to clients.',
  type: 'counter', labelNames: ['design'], aggregator: 'sum',
});
export const BYTES_RECEIVED = spec({
  name: 'wslab_received_bytes_total',
  help: 'Payload bytes of data messages received from clients.',
  type: 'counter', labelNames: ['design'], aggregator: 'sum',
});
export const BYTES_SENT = spec({
  name: 'wslab_sent_bytes_total',
  help: 'Payload bytes of data messages sent to clients.',
  type: 'counter', labelNames: ['design'], aggregator: 'sum',
});
export const BUFFERED_BYTES = spec({
  name: 'wslab_buffered_bytes',
  help: 'Bytes accepted for sending but not yet written to the kernel, summed over connections (slow readers grow it).',
  type: 'gauge', labelNames: ['design'], aggregator: 'sum',
});
export const SEND_DROPPED = spec({
  name: 'wslab_send_dropped_total',
  help: 'Replies not sent because the connection was over --max-backpressure.',
  type: 'counter', labelNames: ['design'], aggregator: 'sum',
});
export const COMMAND_DURATION = spec({
  name: 'wslab_command_duration_seconds',
  help: 'Time from a request being parsed to its reply being handed to the socket, by protocol command.',
  type: 'histogram', labelNames: ['design', 'command'], buckets: LATENCY_BUCKETS, aggregator: 'sum',
});
