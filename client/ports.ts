/** Which local ports the swarm binds: one place for the range, read by the pools, the coordinator's warnings and the lab's budget. */
import { readFileSync } from 'node:fs';

/** The kernel's ephemeral port range (net.ipv4.ip_local_port_range). */
export function ephemeralPorts(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'latin1').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo && hi < 65536) return [lo, hi];
  } catch { /* not Linux: the usual range */ }
  return [32768, 60999];
}

/** The swarm's local port range on each source address, how many ports that is, and how many it leaves the kernel. */
export interface SwarmPorts { readonly range: readonly [number, number]; readonly perSource: number; readonly kept: number }

/**
 * The local ports the swarm binds on its source addresses: the ephemeral range less its top `kept` ports (1,024, or
 * an eighth of a small range), which the swarm never binds on any address. Linux gives an unbound connect() — a
 * Prometheus scrape, curl, the lab's own sampler, anything else on the box — only a port number that no socket has
 * bound explicitly, on any address, so a swarm walking the whole range over many addresses leaves the rest of the
 * machine with EADDRNOTAVAIL (measured: 210,000 held connections over 129 addresses, and `curl` to a local /metrics
 * failed at once).
 */
export function swarmPorts(ephemeral: readonly [number, number] = ephemeralPorts()): SwarmPorts {
  const [lo, hi] = ephemeral;
  const kept = Math.min(1024, Math.floor((hi - lo + 1) / 8));
  return { range: [lo, hi - kept], perSource: hi - kept - lo + 1, kept };
}
