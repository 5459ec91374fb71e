/**
 * `swarm --server-metrics URL`: who ended the connections the swarm did not close itself. The swarm sees a close
 * frame, a reset or an HTTP refusal; only the server knows which of those it started. So the server's wslab metrics
 * are read before the first connection and at the end of the hold: the closes it started (by reason) and the
 * upgrades it refused are its own; with a proxy in front (`wslab serve --via`, whose counters ride on the same
 * /metrics), the rest were the proxy's — a slowloris the proxy cut never reached the server at all.
 */
import { parseExposition, sumOf, type Sample } from '../metrics/exposition.js';
import { CLOSE_REASONS, CONNECTIONS_ACCEPTED, CONNECTIONS_CLOSED, CONNECTIONS_OPEN, HANDSHAKES_REJECTED, type CloseReason } from '../metrics/connections.js';
import { PROXY_CONNECTIONS_ACCEPTED, PROXY_UP } from '../metrics/proxy.js';

/** Closes the server saw the other end start: a client's close frame (normal) or its connection dropping (error). */
const PEER_REASONS: readonly CloseReason[] = ['normal', 'error'];
/** Closes the server started itself (a refusal, `rejected`, is counted once, as a refused upgrade). */
const SERVER_REASONS = CLOSE_REASONS.filter((r) => !PEER_REASONS.includes(r) && r !== 'rejected');

export interface CountsSnapshot {
  readonly proxy: string | null;
  readonly proxyAccepted: number | null;
  readonly upgraded: number;
  readonly refused: number;
  readonly closed: Readonly<Record<CloseReason, number>>;
}

export interface Attribution {
  /** The server's /metrics the figures come from. */
  metrics: string;
  /** The proxy in front (`wslab_proxy_up`'s label), or null: clients reached the server directly. */
  proxy: string | null;
  /** Connections the proxy accepted during the run; null without a proxy. */
  proxyAccepted: number | null;
  /** Upgrades the server completed during the run (wslab_connections_accepted_total). */
  serverUpgraded: number;
  /** Upgrades it refused with an HTTP error (wslab_handshakes_rejected_total). */
  serverRefused: number;
  /** Closes the server started, by reason (idle_timeout, backpressure, handshake_timeout, …): only those > 0. */
  serverEnded: Record<string, number>;
  /** Closes the server saw the other end start (a client's close, a dropped connection): a proxy's cut lands here. */
  peerEnded: number;
  /** What the swarm saw end without asking: held connections lost, attackers cut. */
  endedUnasked: number;
  /** Of those, ended by the server: its refusals and the closes it started, at most `endedUnasked`. */
  byServer: number;
  /** The rest, with a proxy in front: ended by the proxy. null without one. */
  byProxy: number | null;
  /** Without a proxy, what the server's counters do not account for (e.g. uWS's uncounted handshake timeout). */
  unattributed: number;
}

/** The server's counters now, from its /metrics (any server exposing the wslab contract: ours, with or without --via). */
export async function readCounts(url: string, timeoutMs = 5000): Promise<CountsSnapshot> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return countsOf(parseExposition(await res.text()));
}

export function countsOf(m: readonly Sample[]): CountsSnapshot {
  // a counter nothing has incremented yet may be absent; the open gauge is always there
  if (!m.some((s) => s.name === CONNECTIONS_OPEN.name)) throw new Error(`no ${CONNECTIONS_OPEN.name} in it: not a server of the wslab metric contract`);
  const proxy = m.find((s) => s.name === PROXY_UP.name)?.labels.proxy ?? null;
  return {
    proxy,
    proxyAccepted: proxy === null ? null : sumOf(m, PROXY_CONNECTIONS_ACCEPTED.name),
    upgraded: sumOf(m, CONNECTIONS_ACCEPTED.name),
    refused: sumOf(m, HANDSHAKES_REJECTED.name),
    closed: Object.fromEntries(CLOSE_REASONS.map((r) => [r, sumOf(m, CONNECTIONS_CLOSED.name, { reason: r })])) as Record<CloseReason, number>,
  };
}

/** Who ended what between two readings, given what the swarm saw end without asking. */
export function attribute(url: string, before: CountsSnapshot, after: CountsSnapshot, endedUnasked: number): Attribution {
  const d = (r: CloseReason): number => Math.max(0, after.closed[r] - before.closed[r]);
  const serverEnded = Object.fromEntries(SERVER_REASONS.map((r) => [r, d(r)]).filter(([, n]) => (n as number) > 0)) as Record<string, number>;
  const serverRefused = Math.max(0, after.refused - before.refused);
  const byServer = Math.min(endedUnasked, serverRefused + Object.values(serverEnded).reduce((a, b) => a + b, 0));
  const proxy = after.proxy;
  return {
    metrics: url, proxy,
    proxyAccepted: proxy === null ? null : Math.max(0, (after.proxyAccepted ?? 0) - (before.proxyAccepted ?? 0)),
    serverUpgraded: Math.max(0, after.upgraded - before.upgraded), serverRefused, serverEnded,
    peerEnded: PEER_REASONS.reduce((a, r) => a + d(r), 0), endedUnasked, byServer,
    byProxy: proxy === null ? null : endedUnasked - byServer,
    unattributed: proxy === null ? endedUnasked - byServer : 0,
  };
}

/** "100 ended without the swarm asking: 0 by the server, 100 by nginx (it accepted 100; the server upgraded 0)". */
export function attributionLine(a: Attribution): string {
  const own = Object.entries(a.serverEnded).map(([r, n]) => `${r} ${n}`);
  if (a.serverRefused) own.unshift(`refused ${a.serverRefused}`);
  const server = `${a.byServer} by the server${own.length ? ` (${own.join(', ')})` : ''}`;
  const rest = a.byProxy !== null ? `, ${a.byProxy} by ${a.proxy} (it accepted ${a.proxyAccepted}; the server upgraded ${a.serverUpgraded})`
    : a.unattributed ? `, ${a.unattributed} not in the server's counters (no proxy in front: the server ended them without counting, docs/defenses.md)` : '';
  return `${a.endedUnasked} ended without the swarm asking: ${server}${rest}`;
}
