/*
 * Many machines, simulated on one: a server and three swarm shards, each in its own network namespace, joined by a
 * bridge, the way an Indexed Job's pods reach a server pod. The shards' merged summary must equal what the server
 * counted.
 *
 * Why the remote target is still safe (the swarm refuses non-loopback targets without --allow-remote-target):
 * 198.18.0.0/15 is the benchmarking range (RFC 2544), and here 198.18.0.1 exists only inside the server's namespace.
 * Each namespace has its loopback and one veth into a switch namespace holding a bridge with no address and no
 * uplink; no namespace has a default route, and the machine's own (root) namespace gets no address, route or link
 * of this test. A packet for anything but 198.18.0.0/24 has nowhere to go; the test checks the routing tables.
 *
 * Needs root and iproute2. Skips, saying why, only where a namespace cannot be created; with CI=true a missing `ip`
 * fails instead, and once namespaces could be created every failure is a failure. Every namespace is deleted at
 * the end, on failure too, and namespaces left by a killed earlier run (their creator's pid is gone) are removed.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Summary } from '../../client/recorder.js';
import { swarmPorts } from '../../client/ports.js';
import { parseExposition, sumOf } from '../../metrics/exposition.js';
import { WSLAB, eventually } from '../../lab/processes.js';

const PREFIX = 'wslabt';
const tag = `${PREFIX}-${process.pid}-${randomBytes(2).toString('hex')}`;
const NS = { sw: `${tag}-sw`, srv: `${tag}-srv`, shards: [0, 1, 2].map((i) => `${tag}-c${i}`), ports: `${tag}-ports` };
const SERVER_IP = '198.18.0.1';
const SUBNET = '198.18.0.0/24';
/** Each shard's host has two addresses, 198.18.0.(11+i) and .(14+i): `--source-ips 198.18.0.11-198.18.0.16` dealt
 * out by --shard gives shard i exactly those two (j mod 3 = i); any other would fail to bind (EADDRNOTAVAIL). */
const SHARD_IPS = (i: number): string[] => [`198.18.0.${11 + i}`, `198.18.0.${14 + i}`];
const SOURCE_IPS = '198.18.0.11-198.18.0.16';
const CONNECTIONS = 3001; // not a multiple of 3: the shards open 1001, 1000, 1000
const PORT = 8080;
const METRICS = `http://${SERVER_IP}:9100/metrics`;

const created: string[] = [];
const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'wslab-netns-'));

function ip(...args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Deletes our namespaces, and those of earlier runs whose process is gone. Synchronous: also runs on exit. */
function cleanUp(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  let listed: string[] = [];
  try { listed = ip('netns', 'list').split('\n').map((l) => l.split(' ')[0]).filter(Boolean); } catch { /* nothing to sweep */ }
  const stale = listed.filter((n) => {
    const m = new RegExp(`^${PREFIX}-(\\d+)-`).exec(n);
    if (!m || Number(m[1]) === process.pid) return false;
    try { process.kill(Number(m[1]), 0); return false; } catch { return true; }
  });
  for (const n of [...created.splice(0).reverse(), ...stale]) {
    // a namespace outlives its name while a process is in it: a killed run's server would hold on for ever
    const pids = spawnSync('ip', ['netns', 'pids', n], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
    for (const pid of pids.split('\n').filter(Boolean)) try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
    spawnSync('ip', ['netns', 'del', n], { timeout: 10_000 });
  }
}
process.on('exit', cleanUp);
after(() => { cleanUp(); rmSync(dir, { recursive: true, force: true }); });

/** Creates the switch namespace, once; a string says why namespaces cannot be created here (the tests then skip). */
let canCreate: { why: string | undefined } | undefined;
function canCreateNamespaces(): string | undefined {
  return (canCreate ??= { why: tryCreateNamespace() }).why;
}
function tryCreateNamespace(): string | undefined {
  const which = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (which.error) {
    if (process.env.CI === 'true') throw new Error('`ip` (iproute2) is not installed: CI must have it for the multi-host test');
    return '`ip` (iproute2) is not installed';
  }
  try {
    ip('netns', 'add', NS.sw);
    created.push(NS.sw);
  } catch (err) {
    return `ip netns add failed (${(err as Error).message}); network namespaces need root (CAP_SYS_ADMIN)`;
  }
  return undefined;
}

/** Server and shards each get one veth into the switch namespace's bridge; no default route anywhere. */
function buildNetwork(): void {
  ip('-n', NS.sw, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', NS.sw, 'link', 'set', 'br0', 'up');
  const hosts: [string, string[]][] = [[NS.srv, [SERVER_IP]], ...NS.shards.map((n, i) => [n, SHARD_IPS(i)] as [string, string[]])];
  hosts.forEach(([ns, addrs], i) => {
    ip('netns', 'add', ns);
    created.push(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `port${i}`, 'netns', NS.sw);
    ip('-n', NS.sw, 'link', 'set', `port${i}`, 'master', 'br0', 'up');
    for (const addr of addrs) ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
  });
}

/** `ip netns exec <ns> node dist/cli/wslab.js …`; `ip netns exec` execs, so the child's pid is node's. */
function wslabIn(ns: string, args: string[]): { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, WSLAB, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

/**
 * A /metrics page fetched from inside a namespace by a plain fetch (an unbound connect: the kernel picks the local
 * port), as Prometheus would; by default the server's, from shard 0's namespace across the bridge.
 */
function scrapeServer(ns = NS.shards[0], url = METRICS): ReturnType<typeof parseExposition> {
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e',
    `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { console.error(e.cause?.code ?? e.message); process.exit(1); })`],
  { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) throw new Error(`scrape failed: ${r.stderr.trim()}`);
  return parseExposition(r.stdout);
}

describe('swarm shards on three simulated hosts (network namespaces) against a server on a fourth', () => {
  it('the merged summary of --shard 0/3, 1/3, 2/3 equals the server\'s scraped totals', { timeout: 60_000 }, async (t) => {
    const why = canCreateNamespaces();
    if (why !== undefined) {
      t.skip(`network namespaces cannot be created here: ${why}`);
      return;
    }
    const t0 = Date.now();
    buildNetwork();
    for (const ns of [NS.srv, ...NS.shards]) {
      const routes = ip('-n', ns, 'route', 'show').trim().split('\n');
      assert.deepEqual(routes.map((r) => r.split(' ')[0]), [SUBNET], `${ns} routes: ${routes.join('; ')}`);
    }
    assert.doesNotMatch(ip('addr', 'show'), /198\.18\./, 'the root namespace has no 198.18 address');

    const server = wslabIn(NS.srv, ['serve', '--design', 'uws', '--host', SERVER_IP, '--port', String(PORT), '--metrics-host', SERVER_IP, '--metrics-port', '9100']);
    assert.ok(await eventually(() => server.out().includes('"event":"listening"'), 15_000), `server not listening: ${server.err()}`);

    const summaries = NS.shards.map((_, i) => join(dir, `shard-${i}.json`));
    const shards = NS.shards.map((ns, i) => wslabIn(ns, [
      'swarm', '--url', `ws://${SERVER_IP}:${PORT}/`, '--allow-remote-target', '--connections', String(CONNECTIONS),
      '--shard', `${i}/3`, '--source-ips', SOURCE_IPS, '--hold', '8s', '--summary', summaries[i],
    ]));

    // During the hold: the server's view, scraped across the bridge.
    let open = 0;
    let accepted = 0;
    const full = await eventually(() => {
      const m = scrapeServer();
      [open, accepted] = [sumOf(m, 'wslab_connections_open'), sumOf(m, 'wslab_connections_accepted_total')];
      return open === CONNECTIONS;
    }, 30_000);
    const heldAt = (Date.now() - t0) / 1000;
    const codes = await Promise.all(shards.map((s) => s.exited));
    assert.ok(full, `the server never held ${CONNECTIONS} (last scrape: open ${open}, accepted ${accepted}); shards: ${shards.map((s) => s.err()).join('\n')}`);
    codes.forEach((code, i) => assert.equal(code, 0, `shard ${i}: ${shards[i].err()}`));

    const mergedFile = join(dir, 'merged.json');
    const merge = spawnSync(process.execPath, [WSLAB, 'swarm', 'merge', ...summaries, '--out', mergedFile], { encoding: 'utf8', timeout: 15_000 });
    assert.equal(merge.status, 0, merge.stderr);
    const merged = JSON.parse(readFileSync(mergedFile, 'utf8')) as Summary;
    const parts = summaries.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Summary);
    assert.deepEqual(parts.map((p) => p.target), [1001, 1000, 1000]);
    assert.deepEqual(merged.merged, { summaries: 3, shards: ['0/3', '1/3', '2/3'] });
    assert.equal(merged.target, CONNECTIONS);
    assert.equal(merged.heldAtEnd, open, 'merged heldAtEnd = the server\'s wslab_connections_open during the hold');
    assert.equal(merged.opened, accepted, 'merged opened = the server\'s wslab_connections_accepted_total');
    assert.equal(merged.failed.total, 0, 'no EADDRNOTAVAIL: every shard bound only its own two addresses');
    assert.equal(merged.lost.total, 0);
    assert.equal(merged.connectLatencyMs.p50 !== null, true);

    // The close phase reached the server: nothing open there once every shard has exited.
    assert.ok(await eventually(() => sumOf(scrapeServer(), 'wslab_connections_open') === 0, 5000), 'server still holds connections after the shards closed');
    t.diagnostic(`held ${open} at ${heldAt.toFixed(1)} s; merged: opened ${merged.opened}, heldAtEnd ${merged.heldAtEnd}, ` +
      `${merged.connectRatePerSec}/s, connect p50 ${merged.connectLatencyMs.p50} ms p99 ${merged.connectLatencyMs.p99} ms, ` +
      `shards ${parts.map((p) => `${p.opened}@${p.connectRatePerSec}/s`).join(' ')}; total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    server.child.kill('SIGTERM');
    await server.exited;
  });
});

describe('a swarm that has bound every port it may on its source address', () => {
  it('leaves the kernel ports for everything else: an unbound fetch of /metrics still connects, and the rest fail as EADDRNOTAVAIL', { timeout: 60_000 }, async (t) => {
    // Linux gives an unbound connect() only a port number nobody has bound explicitly on any address; a swarm that
    // walked the whole ephemeral range left Prometheus, curl and the lab's sampler with EADDRNOTAVAIL.
    assert.deepEqual(swarmPorts([32768, 60999]), { range: [32768, 59975], perSource: 27_208, kept: 1024 });
    const why = canCreateNamespaces();
    if (why !== undefined) {
      t.skip(`network namespaces cannot be created here: ${why}`);
      return;
    }
    // a namespace of its own, with a 2,000-port ephemeral range (the sysctl is per namespace): filling it takes 2,000
    // connections, not 28,232
    ip('netns', 'add', NS.ports);
    created.push(NS.ports);
    ip('-n', NS.ports, 'link', 'set', 'lo', 'up');
    const sysctl = spawnSync('ip', ['netns', 'exec', NS.ports, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=40000 41999'], { encoding: 'utf8' });
    assert.equal(sysctl.status, 0, sysctl.stderr);
    const ports = swarmPorts([40000, 41999]);
    assert.deepEqual(ports, { range: [40000, 41749], perSource: 1750, kept: 250 });

    const server = wslabIn(NS.ports, ['serve', '--design', 'ws', '--port', '0', '--metrics-port', '0']);
    assert.ok(await eventually(() => server.out().includes('"event":"listening"'), 15_000), `server not listening: ${server.err()}`);
    const { url, metrics } = JSON.parse(server.out().split('\n')[0]) as { url: string; metrics: string };
    const summary = join(dir, 'ports.json');
    const swarm = wslabIn(NS.ports, ['swarm', '--url', url, '--connections', '2000', '--source-ips', '127.0.0.2', '--hold', '6s', '--summary', summary]);

    let open = 0;
    let lastError = '';
    const full = await eventually(() => {
      try {
        open = sumOf(scrapeServer(NS.ports, metrics), 'wslab_connections_open');
      } catch (err) {
        lastError = (err as Error).message;
      }
      return open === ports.perSource;
    }, 30_000);
    assert.ok(full, `the server was never scraped holding ${ports.perSource} (last: ${open}, ${lastError}); swarm: ${swarm.err()}`);
    // every port the swarm may bind on 127.0.0.2 is held now, and the plain fetch above connected all the same
    assert.equal(lastError, '', 'no scrape failed while the swarm filled its ports');
    await swarm.exited;
    const s = JSON.parse(readFileSync(summary, 'utf8')) as Summary;
    assert.equal(s.opened, ports.perSource, 'the swarm bound every port of its range, and none of the kernel\'s');
    assert.equal(s.failed.total, 2000 - ports.perSource);
    assert.equal(s.failed.EADDRNOTAVAIL, 2000 - ports.perSource);
    assert.match(swarm.err(), /2000 connections per source address exceed the 1750 ports the swarm binds on each \(ports 40000–41749; the top 250/);
    server.child.kill('SIGTERM');
    await server.exited;
  });
});
