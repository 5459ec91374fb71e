import { spec } from './spec.js';

/**
 * The proxy in front of a design (`wslab serve --via nginx|haproxy`), read from its own counters (nginx stub_status,
 * the HAProxy stats CSV) at scrape time and exposed beside the design's metrics. `proxy` is nginx or haproxy.
 */
export const PROXY_UP = spec({
  name: 'wslab_proxy_up',
  help: 'Whether the proxy in front of the design answered its status page at this scrape (1) or not (0).',
  type: 'gauge', labelNames: ['proxy'], aggregator: 'sum',
});
export const PROXY_CONNECTIONS_OPEN = spec({
  name: 'wslab_proxy_connections_open',
  help: 'Client connections the proxy holds now (nginx: stub_status active, less the scrape\'s own; HAProxy: the frontend\'s current sessions).',
  type: 'gauge', labelNames: ['proxy'], aggregator: 'sum',
});
export const PROXY_CONNECTIONS_ACCEPTED = spec({
  name: 'wslab_proxy_connections_accepted_total',
  help: 'Client connections the proxy accepted (nginx: stub_status accepts, less the scrapes\' own; HAProxy: the frontend\'s total sessions).',
  type: 'counter', labelNames: ['proxy'], aggregator: 'sum',
});
