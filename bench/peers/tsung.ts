/** bench/peers' adapter for Tsung (`ts_websocket`: connect, then a long thinktime), Debian's package. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopGroup } from './process-groups.js';
import { findBin, type Peer, type PeerSettings } from './peer.js';

export const tsungPeer = (settings: PeerSettings): Peer => ({
  name: 'tsung',
  version() {
    const bin = findBin(settings.tsung.bin);
    if (!bin) return null;
    try { return /VERSION=(\S+)/.exec(readFileSync(bin, 'utf8'))?.[1] ?? 'unknown'; } catch { return 'unknown'; }
  },
  unavailable: () => (findBin(settings.tsung.bin) ? null : `no tsung binary at '${settings.tsung.bin}': apt-get install -y tsung, or pass --tsung PATH / TSUNG_BIN`),
  prepare(dir, url, n, holdFor) {
    const u = new URL(url);
    // 5000/s (default) opened 15,000 fastest here: asked 1,500/s → 2,001/s achieved, 3,000 → 4,620, 5,000 → 5,995,
    // 8,000 → 4,631, 10,000 → 3,168, 15,000 → 2,069 (Tsung's launcher overshoots low rates, chokes on high ones).
    const rate = Math.min(n, settings.tsung.rate);
    // Tsung stops launching users when the phase's duration ends, even short of maxnumber (measured here: 500 users
    // at 500/s in a 1 s phase launched 2, at 250/s in 2 s 227): give the phase twice the time plus 5 s, and let
    // maxnumber stop it at N.
    const duration = 2 * Math.ceil(n / rate) + 5;
    const xml = [
      '<?xml version="1.0"?>',
      '<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd" []>',
      '<tsung loglevel="notice" version="1.0" dumptraffic="false">',
      '  <clients>',
      `    <client host="localhost" use_controller_vm="true" maxusers="${Math.max(n, 1000)}">`,
      ...settings.sourceIps.ips.map((ip) => `      <ip value="${ip}"/>`),
      '    </client>',
      '  </clients>',
      `  <servers><server host="${u.hostname}" port="${u.port}" type="tcp"/></servers>`,
      '  <load>',
      `    <arrivalphase phase="1" duration="${duration}" unit="second">`,
      `      <users maxnumber="${n}" arrivalrate="${rate}" unit="second"/>`,
      '    </arrivalphase>',
      '  </load>',
      '  <sessions>',
      '    <session name="idle-hold" probability="100" type="ts_websocket">',
      '      <request><websocket type="connect" path="/"></websocket></request>',
      `      <thinktime value="${holdFor}" random="false"/>`,
      '    </session>',
      '  </sessions>',
      '</tsung>',
      '',
    ].join('\n');
    const config = join(dir, 'idle-hold.xml');
    const logs = join(dir, 'log');
    return {
      // -n: no web GUI (port 8091); -i: a controller name of our own; the Erlang distribution and epmd on loopback.
      command: findBin(settings.tsung.bin)!, args: ['-n', '-i', `peers${process.pid}`, '-f', config, '-l', logs, 'start'],
      env: { ERL_EPMD_ADDRESS: '127.0.0.1', ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1} -tsung_controller dumpstats_interval 2000' },
      files: { [config]: xml },
      stop: (child) => stopGroup(child, 'SIGTERM', 15_000),
      selfReport(_out, stderr, exitCode) {
        let log = '';
        try {
          for (const d of readdirSync(logs)) if (existsSync(join(logs, d, 'tsung.log'))) log = readFileSync(join(logs, d, 'tsung.log'), 'utf8');
        } catch { /* no log dir */ }
        const last: Record<string, number[]> = {};
        for (const m of log.matchAll(/^stats: (\S+) (-?[\d.]+) (-?[\d.]+)/gm)) last[m[1]] = [Number(m[2]), Number(m[3])];
        const errors: Record<string, number> = {};
        for (const [k, v] of Object.entries(last)) if (k.startsWith('error_')) errors[k] = v[1];
        return {
          exitCode, errors, connected: last.connected?.[1] ?? null, users: last.users?.[0] ?? null, websocketSucc: last.websocket_succ?.[1] ?? null,
          arrivalsRequested: { count: n, ratePerSec: rate, overSec: duration }, stderrTail: stderr.trim() ? stderr.slice(-600) : undefined,
        };
      },
    };
  },
});
