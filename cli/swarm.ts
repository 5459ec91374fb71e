import { lookup } from 'node:dns/promises';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Argv } from 'yargs';
import {
  PROBE_MODES, PROFILES, SWARM_DEFAULTS as D, socketsPerWorker, type ProbeMode, type ProbeOptions, type ProfileName, type ReplyMatch,
  type SwarmCommand, type SwarmGroup, type SwarmHandshake, type SwarmOptions, type SwarmSpeech, type SwarmTarget,
} from '../client/options.js';
import { SWARM_FLAGS as F } from '../client/flags.js';
import { matchNeedsId } from '../client/match.js';
import type { ReconnectOptions } from '../client/reconnect.js';
import { Renderer, compileTemplate, readVars, type Template, type VarTable } from '../client/template.js';
import { parseShard, shardConnections, shardSlice } from '../client/shard.js';
import { yargsOptions } from '../core/flags.js';
import { hostAddress, isLoopback } from '../core/net.js';
import { openFilesLimit } from '../metrics/proc-status.js';
import { parseThreshold } from '../client/thresholds.js';
import { LIMITS } from '../server/protocol.js';
import { UsageError } from '../core/errors.js';
import { withMergeCommand } from './swarm-merge.js';
import { WEB_FLAGS, webOptions } from '../web/options.js';
import { outputFile, parseDuration, parseInteger } from '../core/units.js';

type Raw = Record<string, unknown>;

const LOOPBACK_RULE = 'the swarm only loads loopback targets (127.0.0.0/8, ::1, localhost); pass --allow-remote-target to load a machine you own';
const MAX_SOURCES = 65_536;

/** `ws://host:port/path` → a target with an IP address; loopback only unless `allowRemote`. */
export async function parseTarget(text: string, allowRemote: boolean): Promise<SwarmTarget> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url: "${text}" is not a URL (use e.g. ws://127.0.0.1:8080/)`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new UsageError(`--url: "${text}" must be a ws:// or wss:// URL`);
  const tls = url.protocol === 'wss:';
  if (url.username || url.password) throw new UsageError(`--url: "${text}": credentials in the URL are not supported`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let ip = hostAddress(url);
  if (!isLoopback(ip)) {
    if (!allowRemote) throw new UsageError(`--url: "${text}" is not a loopback target: ${LOOPBACK_RULE}`);
    if (isIP(ip) === 0) {
      try {
        ip = (await lookup(host)).address;
      } catch (err) {
        throw new UsageError(`--url: "${text}": cannot resolve ${host} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    }
  }
  return Object.freeze({
    url: text, ip, family: isIP(ip) === 6 ? 6 : 4, port: url.port ? Number(url.port) : tls ? 443 : 80,
    path: `${url.pathname || '/'}${url.search}`, host: url.host, tls, hostname: isIP(host) === 0 ? host : '',
  });
}

const ipv4ToInt = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const intToIpv4 = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/** `127.0.0.2-127.0.0.60`, `127.0.0.2,127.0.0.3`, or a mix → the list of addresses. */
export function parseSourceIps(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const dash = part.indexOf('-');
    if (dash < 0) {
      if (isIP(part) === 0) throw new UsageError(`--source-ips: "${part}" is not an IP address (use e.g. 127.0.0.2-127.0.0.60 or a comma list)`);
      out.push(part);
      continue;
    }
    const [a, b] = [part.slice(0, dash).trim(), part.slice(dash + 1).trim()];
    if (isIP(a) !== 4 || isIP(b) !== 4) throw new UsageError(`--source-ips: "${part}" is not an IPv4 range (use e.g. 127.0.0.2-127.0.0.60)`);
    const [lo, hi] = [ipv4ToInt(a), ipv4ToInt(b)];
    if (hi < lo) throw new UsageError(`--source-ips: "${part}" ends before it starts`);
    if (hi - lo + 1 + out.length > MAX_SOURCES) throw new UsageError(`--source-ips: more than ${MAX_SOURCES} addresses`);
    for (let n = lo; n <= hi; n++) out.push(intToIpv4(n));
  }
  if (out.length === 0) throw new UsageError('--source-ips: no address given');
  return [...new Set(out)];
}

const COMMAND_LIMITS: Record<SwarmCommand['verb'], number> = {
  echo: 1024 * 1024, wait: LIMITS.waitMs, block: LIMITS.blockMs, cpu: LIMITS.cpuUnits, fill: LIMITS.fillBytes,
};

/** `echo 32` (echo a 32-byte payload), `wait 50`, `cpu 1000`, `block 10`, `fill 100`. */
export function parseCommand(text: string): SwarmCommand {
  const m = /^(echo|wait|cpu|block|fill)\s+(\d{1,9})$/.exec(text.trim());
  if (!m) throw new UsageError(`--command: "${text}" is not "<verb> <n>" with verb echo|wait|cpu|block|fill (e.g. 'echo 32', 'wait 50')`);
  const verb = m[1] as SwarmCommand['verb'];
  const arg = Number(m[2]);
  if (arg > COMMAND_LIMITS[verb]) throw new UsageError(`--command: "${text}": ${verb} takes 0 to ${COMMAND_LIMITS[verb]}`);
  return Object.freeze({ verb, arg, wire: verb === 'echo' ? ` echo ${'x'.repeat(arg)}` : ` ${verb} ${arg}` });
}

const MIX_EXAMPLE = "e.g. 'slowloris:2000,chatty:200@5s'";

/** `slowloris:2000,chatty:200@5s` → groups: `<profile>:<connections>[@<start delay>]`, each profile once. */
export function parseMix(text: string): SwarmGroup[] {
  const groups = text.split(',').map((p) => p.trim()).filter(Boolean).map((part) => {
    const m = /^([a-z-]+):(\d+)(?:@(\S+))?$/.exec(part);
    if (!m) throw new UsageError(`--mix: "${part}" is not <profile>:<connections>[@<delay>] (${MIX_EXAMPLE})`);
    if (!PROFILES.includes(m[1] as ProfileName)) throw new UsageError(`--mix: "${m[1]}" is not one of ${PROFILES.join(', ')}`);
    const connections = Number(m[2]);
    if (connections < 1 || connections > 10_000_000) throw new UsageError(`--mix: "${part}": connections must be from 1 to 10000000`);
    const startDelayMs = m[3] === undefined ? 0 : parseDuration('mix', m[3]);
    return Object.freeze({ profile: m[1] as ProfileName, connections, startDelayMs });
  });
  if (groups.length === 0) throw new UsageError(`--mix: no group given (${MIX_EXAMPLE})`);
  const twice = groups.find((g, i) => groups.findIndex((x) => x.profile === g.profile) !== i);
  if (twice) throw new UsageError(`--mix: ${twice.profile} appears twice (one group per profile)`);
  return groups;
}

/**
 * `--probe ping|send` → the prober's options. The probe talks as the swarm does: the same headers (a placeholder
 * renders as for connection 0), subprotocols and TLS checks (for the wss:// targets), and `--probe send` sends the
 * `--send` message (connection 0's first) when there is one.
 */
export function parseProbe(raw: unknown, hs: SwarmHandshake, sp: SwarmSpeech): ProbeOptions | undefined {
  if (raw === undefined) return undefined;
  const mode = String(raw);
  if (!(PROBE_MODES as readonly string[]).includes(mode)) throw new UsageError(`--probe: "${mode}" is not one of ${PROBE_MODES.join(', ')}`);
  const render = (t: Template): string => new Renderer(t, sp.total, sp.vars).text(0, 0);
  return Object.freeze({
    mode: mode as ProbeMode, payload: sp.send ? render(sp.send) : D.probePayload, intervalMs: D.probeIntervalMs, timeoutMs: D.probeTimeoutMs,
    connect: Object.freeze({
      headers: Object.freeze(Object.fromEntries(hs.headers.map((h) => [h.name, render(h.value)]))),
      protocols: hs.subprotocols,
      tls: Object.freeze({ rejectUnauthorized: !hs.insecure, ca: hs.ca, servername: hs.servername }),
    }),
  });
}

/** `--reconnect fixed|backoff` with `--reconnect-delay` and `--reconnect-max`: for idle groups, checked together. */
function parseReconnect(a: Raw, has: (...ps: ProfileName[]) => boolean): ReconnectOptions | undefined {
  const mode = F.reconnect.parse(a.reconnect ?? D.reconnect);
  const flags = ['reconnect-delay', 'reconnect-max'].filter((f) => given(a, f));
  if (mode === 'off') {
    if (flags.length) throw new UsageError(`--${flags[0]} applies with --reconnect fixed or backoff only`);
    return undefined;
  }
  if (!has('idle')) throw new UsageError('--reconnect applies to idle connections only (the profile whose held connections it brings back)');
  if (mode === 'fixed' && given(a, 'reconnect-max')) throw new UsageError('--reconnect-max applies to --reconnect backoff only (fixed waits --reconnect-delay every time)');
  const delayMs = F.reconnectDelayMs.parse(a['reconnect-delay'] ?? D.reconnectDelay);
  const maxMs = F.reconnectMaxMs.parse(a['reconnect-max'] ?? D.reconnectMax);
  if (delayMs < 1) throw new UsageError('--reconnect-delay: must be at least 1ms');
  if (maxMs < delayMs) throw new UsageError(`--reconnect-max: must be at least --reconnect-delay (${delayMs} ms)`);
  return Object.freeze({ mode, delayMs, maxMs });
}

const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
const given = (a: Raw, flag: string): boolean => a[flag] !== undefined;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the swarm writes itself (RFC 6455 §4.1), and those that have their own flag. */
const OWN_HEADERS: Record<string, string> = {
  host: 'it comes from --url', upgrade: 'the swarm sends it', connection: 'the swarm sends it', 'sec-websocket-key': 'the swarm sends it',
  'sec-websocket-version': 'the swarm sends it', 'sec-websocket-protocol': 'use --subprotocol', 'sec-websocket-extensions': 'use --deflate (permessage-deflate is the one extension the swarm speaks)',
  origin: 'use --origin', 'user-agent': 'use --user-agent', 'content-length': 'an upgrade request has no body', 'transfer-encoding': 'an upgrade request has no body',
};
const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
export const DEFAULT_USER_AGENT = `wslab/${VERSION}`;

/** `--header`, `--origin`, `--user-agent`, `--subprotocol` and the TLS flags, checked once. */
export function parseHandshake(a: Raw, targets: readonly SwarmTarget[], vars: VarTable | undefined): SwarmHandshake {
  const headers: { name: string; value: Template }[] = [];
  const add = (flag: string, name: string, value: string): void => {
    if (/[\r\n\0]/.test(value)) throw new UsageError(`--${flag}: "${name}" has a line break or NUL in its value`);
    headers.push({ name, value: compileTemplate(flag, value, vars) });
  };
  for (const h of list(a.header)) {
    const colon = h.indexOf(':');
    const name = colon < 0 ? '' : h.slice(0, colon).trim();
    if (!TOKEN.test(name)) throw new UsageError(`--header: "${h}" is not 'Name: value' with a valid header name`);
    const why = OWN_HEADERS[name.toLowerCase()];
    if (why) throw new UsageError(`--header: ${name} cannot be set with --header: ${why}`);
    if (headers.some((x) => x.name.toLowerCase() === name.toLowerCase())) throw new UsageError(`--header: ${name} is given twice`);
    add('header', name, h.slice(colon + 1).trim());
  }
  if (given(a, 'origin')) add('origin', 'Origin', String(a.origin));
  const ua = given(a, 'user-agent') ? String(a['user-agent']) : DEFAULT_USER_AGENT;
  if (ua !== '') add('user-agent', 'User-Agent', ua);
  const subprotocols = given(a, 'subprotocol') ? list(a.subprotocol).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean) : [];
  if (given(a, 'subprotocol') && subprotocols.length === 0) throw new UsageError('--subprotocol: give one or more names, e.g. chat.v2,chat.v1');
  const bad = subprotocols.find((x) => !TOKEN.test(x));
  if (bad !== undefined) throw new UsageError(`--subprotocol: "${bad}" is not a valid subprotocol name (an HTTP token)`);
  if (new Set(subprotocols).size !== subprotocols.length) throw new UsageError('--subprotocol: a name is given twice');

  const secure = targets.some((t) => t.tls);
  for (const f of ['ca', 'insecure', 'servername']) {
    if (given(a, f) && a[f] !== false && !secure) throw new UsageError(`--${f} applies to wss:// URLs only (every --url here is ws://)`);
  }
  let ca: string | undefined;
  if (given(a, 'ca')) {
    const file = String(a.ca);
    try {
      ca = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`--ca: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--ca: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  if (ca !== undefined && a.insecure === true) throw new UsageError('--ca and --insecure do not combine: --insecure skips the verification --ca is for');
  const servername = given(a, 'servername') ? String(a.servername) : undefined;
  if (servername !== undefined && (isIP(servername) !== 0 || !/^[A-Za-z0-9.-]{1,253}$/.test(servername))) {
    throw new UsageError(`--servername: "${servername}" is not a DNS name (TLS server names cannot be IP addresses)`);
  }
  return Object.freeze({ headers: Object.freeze(headers), subprotocols: Object.freeze(subprotocols), ca, insecure: a.insecure === true, servername, deflate: a.deflate === true });
}

/**
 * `--send`, `--match`, `--expect`, `--subscribe`, `--reader-send`, `--vars`, `--stall-after`, checked together:
 * what a flag needs from another is said before any work.
 */
function parseSpeech(a: Raw, has: (...ps: ProfileName[]) => boolean, vars: VarTable | undefined, total: number, offset: number): SwarmSpeech {
  const template = (flag: string): Template | undefined => (given(a, flag) ? compileTemplate(flag, String(a[flag]), vars) : undefined);
  const send = template('send');
  const subscribe = template('subscribe');
  const readerSend = template('reader-send');
  if (send && given(a, 'command') && has('chatty')) throw new UsageError('--send replaces --command (our protocol\'s shorthand): give one of them');
  // without --match, --send's replies are taken in order (each server message answers the oldest request)
  const match: ReplyMatch = given(a, 'match') ? F.match.parse(a.match) : send ? 'next' : D.match;
  if (send && match === 'wslab') throw new UsageError("--match wslab reads our protocol's replies; with --send use echo, next, json:PATH or regex:RE");
  if (!send && match !== 'wslab' && match !== 'echo') throw new UsageError(`--match ${match} needs --send (your own message); without it the swarm sends our protocol's --command`);
  if (send && matchNeedsId(match) && !send.hasId) throw new UsageError(`--match ${match} finds the request by its id: put {{id}} in --send (e.g. '{"id":{{id}},"type":"ping"}')`);
  if (send?.binary && matchNeedsId(match)) throw new UsageError(`--match ${match} needs a text --send with {{id}}, not base64:/hex:`);
  const expect = given(a, 'expect') ? F.expect.parse(a.expect) || undefined : undefined;
  if (expect !== undefined && !send) throw new UsageError('--expect checks replies to --send: give --send (and --match)');
  if (given(a, 'stall-after') && !subscribe) throw new UsageError('--stall-after applies to --subscribe only');
  const stallAfterMs = F.stallAfterMs.parse(a['stall-after'] ?? D.stallAfter);
  if (given(a, 'stall-after') && stallAfterMs < 1) throw new UsageError('--stall-after: must be at least 1ms');
  return Object.freeze({ send, subscribe, readerSend, match, expect, stallAfterMs, vars, total, offset });
}

/** Checks every swarm flag once and returns the frozen options the coordinator receives. */
export async function swarmOptions(a: Raw): Promise<SwarmOptions> {
  const urls = list(a.url);
  if (urls.length === 0) throw new UsageError('--url: give at least one ws:// URL (repeat --url to spread connections over servers)');
  const allowRemote = a['allow-remote-target'] === true;
  const allTargets = await Promise.all(urls.map((u) => parseTarget(u, allowRemote)));
  const totalConnections = F.connections.parse(a.connections ?? D.connections);
  const allSources = given(a, 'source-ips') ? parseSourceIps(String(a['source-ips'])) : [];
  // The environment is read here and nowhere else: an Indexed Job's pod learns its shard index from it.
  const shard = parseShard(a.shard, a.shards, process.env.JOB_COMPLETION_INDEX);
  const part = shard ? shardSlice({ connections: totalConnections, sources: allSources, targets: allTargets }, shard) : undefined;
  const [sourceIps, targets] = part ? [part.sources, part.targets] : [allSources, allTargets];

  // the open-files limit is read here, once: the default worker count follows it, and so does the EMFILE advice
  const openFiles = openFilesLimit();
  const perWorker = socketsPerWorker(openFiles);
  let groups: SwarmGroup[];
  if (given(a, 'mix')) {
    if (shard) throw new UsageError('--shard/--shards do not combine with --mix yet: run each group as its own sharded swarm');
    for (const f of ['profile', 'connections', 'workers']) {
      if (given(a, f)) throw new UsageError(`--${f} does not combine with --mix (the mix gives each group's profile and connections; each group gets ceil(n / ${perWorker}) workers)`);
    }
    groups = parseMix(String(a.mix));
  } else {
    const profileName = F.profile.parse(a.profile ?? D.profile);
    groups = [Object.freeze({ profile: profileName, connections: part ? part.connections : totalConnections, startDelayMs: 0 })];
  }
  const connections = groups.reduce((n, g) => n + g.connections, 0);
  const has = (...ps: ProfileName[]): boolean => groups.some((g) => ps.includes(g.profile));
  const run = groups.map((g) => g.profile).join(', ');
  const onlyFor = (flag: string, ...ps: ProfileName[]): void => {
    if (given(a, flag) && !has(...ps)) throw new UsageError(`--${flag} applies to ${ps.join(' or ')} only (this run is ${run})`);
  };
  onlyFor('command', 'chatty', 'slow-reader');
  onlyFor('match', 'chatty');
  onlyFor('send', 'chatty', 'slow-frame');
  onlyFor('expect', 'chatty');
  onlyFor('subscribe', 'idle', 'ping', 'chatty');
  onlyFor('reader-send', 'slow-reader');
  const vars = given(a, 'vars') ? readVars(String(a.vars)) : undefined;
  const speech = parseSpeech(a, has, vars, shard ? totalConnections : groups.reduce((n, g) => n + g.connections, 0),
    shard ? shardConnections(totalConnections, shard).first : 0);
  const handshake = parseHandshake(a, allTargets, vars);
  if (vars && ![speech.send, speech.subscribe, speech.readerSend, ...handshake.headers.map((h) => h.value)].some((t) => t?.parts.some((p) => p.k === 'var'))) {
    throw new UsageError('--vars: no {{var:NAME}} in --send, --subscribe, --reader-send or --header uses it');
  }
  onlyFor('interval', 'ping', 'chatty', 'slow-reader');
  onlyFor('dribble-interval', 'slowloris', 'slow-frame');
  onlyFor('dribble-bytes', 'slowloris');
  onlyFor('read-rate', 'slow-reader');
  onlyFor('declared-size', 'oversize');
  onlyFor('fragment-bytes', 'fragment-pin');
  const reconnect = parseReconnect(a, has);
  onlyFor('inflated-size', 'deflate-bomb');
  const intervalMs = F.intervalMs.parse(a.interval ?? D.interval);
  if (intervalMs < 1) throw new UsageError('--interval: must be at least 1ms');
  const holdMs = F.holdMs.parse(a.hold ?? D.hold);
  if (holdMs > 7 * 24 * 3_600_000) throw new UsageError('--hold: at most 7 days');
  const handshakeTimeoutMs = F.handshakeTimeoutMs.parse(a['handshake-timeout'] ?? D.handshakeTimeout);
  if (handshakeTimeoutMs < 100) throw new UsageError('--handshake-timeout: must be at least 100ms');

  const dribbleIntervalMs = F.dribbleIntervalMs.parse(a['dribble-interval'] ?? D.dribbleInterval);
  if (dribbleIntervalMs < 10) throw new UsageError('--dribble-interval: must be at least 10ms');
  const declaredBytes = F.declaredBytes.parse(a['declared-size'] ?? D.declaredBytes);
  if (declaredBytes < 1 || declaredBytes > 2 ** 53 - 1) throw new UsageError('--declared-size: must be from 1 byte to 2^53 - 1 (RFC 6455 64-bit length)');
  const attack = Object.freeze({
    dribbleIntervalMs,
    dribbleBytes: F.dribbleBytes.parse(a['dribble-bytes'] ?? D.dribbleBytes),
    readRate: F.readRate.parse(a['read-rate'] ?? D.readRate),
    declaredBytes,
    fragmentBytes: F.fragmentBytes.parse(a['fragment-bytes'] ?? D.fragmentBytes),
    inflatedBytes: F.inflatedBytes.parse(a['inflated-size'] ?? D.inflatedBytes),
  });
  // --command is chatty's; slow-reader takes it only when no chatty group shares the run
  const command = parseCommand(String(has('chatty') ? a.command ?? D.command : D.command));
  const readerCommand = parseCommand(String(!has('chatty') && given(a, 'command') ? a.command : D.slowReaderCommand));

  const workers = given(a, 'mix') ? groups.reduce((n, g) => n + Math.ceil(g.connections / perWorker), 0)
    : given(a, 'workers') ? F.workers.parse(a.workers) : Math.ceil(connections / perWorker);
  if (workers > connections) throw new UsageError(`--workers: ${workers} is more than --connections ${connections}`);

  // a source address the kernel cannot bind would only show up as failing connects, with a misleading fix
  const local = new Set(Object.values(networkInterfaces()).flatMap((xs) => (xs ?? []).map((x) => x.address.toLowerCase())));
  // this swarm's own addresses only: under --shard the list names every host's, and each shard binds its slice
  const foreign = sourceIps.find((src) => !isLoopback(src) && !local.has(src.toLowerCase()));
  if (foreign !== undefined) throw new UsageError(`--source-ips: ${foreign} is not an address of this machine (\`ip -br addr\` lists them; 127.0.0.0/8 is always local)`);
  for (const src of sourceIps) {
    const t = targets.find((x) => x.family !== isIP(src));
    if (t) throw new UsageError(`--source-ips: ${src} is IPv${isIP(src)} but --url ${t.url} is IPv${t.family}: use addresses of the target's family`);
  }

  const summaryFile = given(a, 'summary') ? outputFile('summary', a.summary) : undefined;
  const serverPid = given(a, 'server-pid') ? F.serverPid.parse(a['server-pid']) || undefined : undefined;
  if (serverPid !== undefined) {
    if (!existsSync(`/proc/${serverPid}/stat`)) throw new UsageError(`--server-pid: no process ${serverPid} on this machine (is the server running?)`);
    const remote = allTargets.find((t) => !isLoopback(t.ip));
    if (remote) throw new UsageError(`--server-pid reads this machine's /proc, but --url ${remote.url} is not local`);
  }

  let serverMetricsUrl: string | undefined;
  if (given(a, 'server-metrics')) {
    let u: URL;
    try { u = new URL(String(a['server-metrics'])); } catch { throw new UsageError(`--server-metrics: "${String(a['server-metrics'])}" is not a URL (e.g. http://127.0.0.1:9464/metrics, the server's ready line's "metrics")`); }
    if (u.protocol !== 'http:') throw new UsageError(`--server-metrics: ${u.href} is not http:// (the server's ready line's "metrics")`);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (!isLoopback(host) && host !== 'localhost') throw new UsageError(`--server-metrics: ${u.host} is not a loopback address`);
    serverMetricsUrl = u.href;
  }

  const thresholds = list(a.threshold).map(parseThreshold);
  for (const t of thresholds) {
    const profile = /^profiles\.([^.]+)\./.exec(t.path)?.[1];
    if (profile !== undefined && !has(profile as ProfileName)) throw new UsageError(`--threshold "${t.expression}": no ${profile} group in this run (${run})`);
  }

  const metricsHost = String(a['metrics-host'] ?? D.metricsHost);
  if (isIP(metricsHost) === 0 && metricsHost !== 'localhost') throw new UsageError(`--metrics-host: "${metricsHost}" is not an IP address`);
  if (given(a, 'metrics-host') && !given(a, 'metrics-port')) throw new UsageError('--metrics-host needs --metrics-port (the endpoint is off without it)');

  return Object.freeze({
    targets: Object.freeze(targets),
    connections,
    groups: Object.freeze(groups),
    attack,
    reconnect,
    // whole-run figures, as for workers: each shard takes its share, so N shards together ramp at --rate
    rate: F.rate.parse(a.rate ?? D.rate) / (shard?.of ?? 1),
    maxPending: Math.ceil(F.maxPending.parse(a['max-pending'] ?? D.maxPending) / (shard?.of ?? 1)),
    holdMs,
    intervalMs,
    command,
    speech,
    handshake,
    readerCommand,
    workers,
    socketsPerWorker: perWorker,
    openFilesLimit: openFiles,
    sourceIps: Object.freeze(sourceIps),
    summaryFile,
    thresholds: Object.freeze(thresholds),
    metricsPort: given(a, 'metrics-port') ? parseInteger('metrics-port', a['metrics-port'], 0, 65535) : undefined,
    metricsHost,
    handshakeTimeoutMs,
    serverPid,
    serverMetricsUrl,
    closeTimeoutMs: D.closeTimeoutMs,
    shard: shard && Object.freeze({ ...shard, totalTarget: totalConnections }),
    probe: parseProbe(a.probe, handshake, speech),
  });
}

/*
 * Flags carry no yargs defaults: the defaults live in SWARM_DEFAULTS and swarmOptions applies them, so it can tell
 * a flag the user gave (and that conflicts with another) from one they did not.
 */
export const swarmCommand = {
  command: 'swarm',
  describe: 'Open, hold and close many WebSocket connections against wslab servers, measured (exit 0 ok, 1 usage, 2 run failed, 99 threshold failed, 130 interrupted)',
  builder: (y: Argv) => withMergeCommand(y
    .option('url', { type: 'string', array: true, describe: 'ws:// URL of a server (repeat to spread connections round-robin); loopback only' })
    .options(yargsOptions(F))
    .option('summary', { type: 'string', describe: 'write the JSON summary (docs/swarm-summary.md) to this file' })
    .option('threshold', { type: 'string', array: true, describe: "pass/fail check on the summary, e.g. 'heldAtEnd>=100000', 'rtt.p99<5ms', 'failed==0' (repeatable; a failure exits 99)" })
    .option('metrics-port', { type: 'string', describe: "the swarm's own /metrics port; 0 = any free port (default: no endpoint)" })
    .option('metrics-host', { type: 'string', describe: `address of the swarm's /metrics (default ${D.metricsHost})` })
    .option('probe', { type: 'string', describe: `ping | send: every ${D.probeIntervalMs / 1000} s a fresh connection asks one round trip (a ping, or a text message echoed back) within ${D.probeTimeoutMs / 1000} s; the summary's \`probe\` says when the service failed and came back (default: none)` })
    .option('allow-remote-target', { type: 'boolean', describe: 'allow a --url that is not loopback (only for machines you own)' })
    .option('shard', { type: 'string', describe: 'i/N: be shard i (0-based) of N swarms, taking a deterministic slice of --connections, --source-ips and --url (see "Beyond one machine" in README.md)' })
    .option('shards', { type: 'string', describe: 'N: as --shard, with i from the JOB_COMPLETION_INDEX environment variable (a Kubernetes Indexed Job sets it)' })
    .option('header', { type: 'string', array: true, describe: "extra upgrade header 'Name: value' (repeatable; the value may hold {{conn}} {{var:NAME}} … as in --send)" })
    .option('origin', { type: 'string', describe: 'Origin header of the upgrade (default: none)' })
    .option('user-agent', { type: 'string', describe: `User-Agent header of the upgrade; '' = none (default "${DEFAULT_USER_AGENT}")` })
    .option('subprotocol', { type: 'string', array: true, describe: 'offer these subprotocols (comma list or repeated); the server must choose one of them, else protocol_error' })
    .option('ca', { type: 'string', describe: "wss://: PEM file of the CA (or self-signed certificate) to trust for the server's certificate" })
    .option('insecure', { type: 'boolean', describe: "wss://: do not verify the server's certificate (testing only)" })
    .option('servername', { type: 'string', describe: "wss://: TLS server name (SNI and certificate check), default the URL's host name" })
    .options(WEB_FLAGS)
    .example('$0 swarm --url ws://127.0.0.1:8080/ --connections 20000 --rate 15000 --hold 30s --source-ips 127.0.0.2-127.0.0.9', 'hold 20,000 idle connections for 30 s')
    .example("$0 swarm --url ws://127.0.0.1:8080/ --connections 100 --profile chatty --command 'wait 50' --interval 100ms --threshold 'rtt.p99<80ms'", 'round trips of a 50 ms backend')
    .example("$0 swarm --url ws://127.0.0.1:8080/ --mix 'slowloris:2000,chatty:200@5s' --hold 20s --summary out.json", '2,000 slowloris, then 200 healthy clients 5 s into the attack')
    .example("$0 swarm --url wss://localhost:8443/ --ca cert.pem --profile chatty --send '{\"id\":{{id}},\"type\":\"ping\"}' --match json:id", 'your own JSON protocol over TLS, replies matched by id')),
  handler: async (a: Raw) => {
    const o = await swarmOptions(a);
    const wo = webOptions(a);
    // loaded only to run: `wslab serve` and a rejected flag do not pay for the swarm's modules
    const { runSwarm } = await import('../client/coordinator.js');
    const web = wo && await (await import('../web/swarm.js')).openSwarmWeb(wo, o);
    if (web) process.stderr.write(`wslab swarm: live view on ${web.url}\n`);
    const code = await runSwarm(o, { stdout: process.stdout, stderr: process.stderr, live: web });
    await web?.close(code);
    process.exit(code);
  },
};
