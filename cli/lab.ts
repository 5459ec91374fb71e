import cliProgress from 'cli-progress';
import type { Argv } from 'yargs';
import { ClinicUnavailableError, clinicBin, PROFILE_TOOLS, type ProfileTool } from '../lab/profile.js';
import { BudgetError, planHold, readHoldMachine, type HoldMachine } from '../lab/budget.js';
import { runLab, type LabOptions, type Progress } from '../lab/run.js';
import { summaryLines } from '../lab/report.js';
import { DEFAULT_SCENARIOS, SCENARIOS } from '../lab/scenarios/index.js';
import { claimsLine } from '../lab/claims.js';
import { describeNoise, QUIET_LIMIT, waitQuiet } from '../metrics/noise.js';
import { fileURLToPath } from 'node:url';
import { failedChecks, readTargets } from '../lab/targets.js';
import { DESIGNS } from '../server/registry.js';
import { PROXIES, proxyUnavailable, VIA_PROFILES, type ProxyKind, type ViaProfile } from '../server/via/proxy.js';
import { UsageError } from '../core/errors.js';
import { outputDir, parseDuration, parseInteger } from '../core/units.js';
import { LiveWeb } from '../web/live.js';
import { WEB_FLAGS, webOptions } from '../web/options.js';
import { labPublisher } from '../web/publish.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const SCALES = ['quick', 'default', 'full', 'max'] as const;
/** The seeds' designs in their own runtime, shipped as targets (docs/targets.md). */
const REFERENCE_TARGETS = fileURLToPath(new URL('../../targets/python.yaml', import.meta.url));
/** `--scale max` defaults: issue 10's million, held a minute. */
const MAX_DEFAULTS = Object.freeze({ connections: 1_000_000, hold: '60s' });

const list = (v: unknown): string[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]).flatMap((s) => String(s).split(',')).map((s) => s.trim()).filter(Boolean);

/**
 * Checks the lab flags once; unknown names are errors that list what is known. `--scale max` is also budgeted here,
 * against `machine` (this box, read from /proc), and refused in one line when it cannot fit.
 */
export function labOptions(a: Record<string, unknown>, machine: () => HoldMachine = readHoldMachine): LabOptions {
  const given = a.targets !== undefined;
  const scenarioIds = [...SCENARIOS.keys()];
  // without --targets, the reference designs in their own runtime (targets/python.yaml) join the lab
  let targets = readTargets(given ? String(a.targets) : REFERENCE_TARGETS, [...DESIGNS.keys()], scenarioIds);
  const known = [...DESIGNS.keys(), ...targets.map((t) => t.name)];
  const designs = list(a.designs);
  for (const d of designs) {
    if (!known.includes(d)) throw new UsageError(`--designs: unknown design "${d}" (known: ${known.join(', ')}${a.targets === undefined ? '; servers of your own go in --targets FILE' : ''})`);
  }
  const scenarios = list(a.scenarios);
  for (const s of scenarios) if (!SCENARIOS.has(s)) throw new UsageError(`--scenarios: unknown scenario "${s}" (known: ${[...SCENARIOS.keys()].join(', ')})`);
  const scale = String(a.scale ?? 'default');
  if (!(SCALES as readonly string[]).includes(scale)) throw new UsageError(`--scale: "${scale}" is not one of ${SCALES.join(', ')}`);
  if (scale !== 'max' && (a.connections !== undefined || a.hold !== undefined)) throw new UsageError('--connections and --hold apply to --scale max only');
  let max: LabOptions['max'];
  if (scale === 'max') {
    if (scenarios.length !== 1 || scenarios[0] !== 'idle-hold') throw new UsageError('--scale max runs idle-hold only: add --scenarios idle-hold');
    if (given) throw new UsageError('--targets does not apply to --scale max (it runs one cluster of our uws workers as wide as the box)');
    targets = [];
    if (designs.length > 0 && !(designs.length === 1 && DESIGNS.get(designs[0])?.model === 'processes')) throw new UsageError('--scale max runs the cluster design of uws workers only: drop --designs');
    if (a.profile !== undefined) throw new UsageError('--profile does not apply to --scale max (clinic would profile one of dozens of processes)');
    if (a.via !== undefined) throw new UsageError('--via does not apply to --scale max (one cluster as wide as the box, reached directly)');
    if (a.deflate !== undefined) throw new UsageError('--deflate does not apply to --scale max (one cluster of uws workers, as it is)');
    const connections = parseInteger('connections', a.connections ?? MAX_DEFAULTS.connections, 1000, 10_000_000);
    const holdMs = parseDuration('hold', a.hold ?? MAX_DEFAULTS.hold);
    if (holdMs < 1000 || holdMs > 3_600_000) throw new UsageError('--hold: from 1s to 1h');
    try {
      max = Object.freeze({ plan: planHold(connections, machine()), holdMs });
    } catch (err) {
      throw err instanceof BudgetError ? new UsageError(`--scale max: ${err.message}`) : err;
    }
  }
  // quick keeps to our designs (it is what the tests run) unless the reference designs are named
  if (!given && scale === 'quick' && !designs.some((d) => targets.some((t) => t.name === d))) targets = [];
  const profile = a.profile === undefined ? undefined : String(a.profile);
  if (profile !== undefined && !(PROFILE_TOOLS as readonly string[]).includes(profile)) throw new UsageError(`--profile: "${profile}" is not one of ${PROFILE_TOOLS.join(', ')}`);
  const via = viaOptions(a);
  const repeat = a.repeat === undefined ? 1 : parseInteger('repeat', a.repeat, 1, MAX_REPEAT);
  if (repeat > 1 && scale === 'max') throw new UsageError('--repeat does not apply to --scale max (one cell that loads the whole box: run the lab again instead)');
  if (repeat > 1 && profile !== undefined) throw new UsageError('--repeat does not apply with --profile (clinic slows what it profiles: profile a single run)');
  if (profile !== undefined) {
    try { clinicBin(); } catch (err) { throw err instanceof ClinicUnavailableError ? new UsageError(`--profile: ${err.message}`) : err; }
  }
  let waitQuietMs: number | undefined;
  if (a['wait-quiet'] !== undefined) {
    waitQuietMs = a['wait-quiet'] === '' ? WAIT_QUIET_DEFAULT_MS : parseDuration('wait-quiet', a['wait-quiet']);
    if (waitQuietMs < 2000 || waitQuietMs > 3_600_000) throw new UsageError(`--wait-quiet: ${a['wait-quiet']} is outside 2s … 1h (bare --wait-quiet waits up to ${WAIT_QUIET_DEFAULT_MS / 1000} s)`);
  }
  return Object.freeze({
    repeat, via, deflate: a.deflate === true, designs, scenarios: scenarios.length ? scenarios : [...DEFAULT_SCENARIOS], scale: scale as LabOptions['scale'], out: outputDir('out', a.out ?? 'reports'),
    profile: profile as ProfileTool | undefined, max, targets, unavailable: failedChecks(targets), waitQuietMs,
  });
}

/** `--via nginx,haproxy [--via-profile default,hardened]`: every proxy × profile asked for, checked to run here. */
function viaOptions(a: Record<string, unknown>): LabOptions['via'] {
  const proxies = list(a.via);
  const profiles = list(a['via-profile']);
  if (!proxies.length) {
    if (profiles.length) throw new UsageError('--via-profile applies with --via nginx and/or haproxy only');
    return undefined;
  }
  for (const p of proxies) {
    if (!(PROXIES as readonly string[]).includes(p)) throw new UsageError(`--via: "${p}" is not one of ${PROXIES.join(', ')}`);
    const why = proxyUnavailable(p as ProxyKind);
    if (why) throw new UsageError(`--via ${p}: ${why}`);
  }
  for (const p of profiles) if (!(VIA_PROFILES as readonly string[]).includes(p)) throw new UsageError(`--via-profile: "${p}" is not one of ${VIA_PROFILES.join(', ')}`);
  return [...new Set(proxies)].flatMap((proxy) => [...new Set(profiles.length ? profiles : ['default'])].map((profile) => ({ proxy: proxy as ProxyKind, profile: profile as ViaProfile })));
}

/** `--repeat`: at most this many runs of every cell. */
const MAX_REPEAT = 20;

/** Bare `--wait-quiet`: how long the lab waits for a quiet box at most. */
const WAIT_QUIET_DEFAULT_MS = 120_000;

/** A bar over the whole plan on a TTY; a line per step otherwise. Both on stderr, so stdout stays the summary. */
function progressView(): Progress {
  if (!process.stderr.isTTY) {
    let total = 0;
    return {
      start: (n, sec) => { total = n; process.stderr.write(`wslab lab: ${n} runs, about ${Math.round(sec)} s\n`); },
      step: (i, label, sec) => process.stderr.write(`wslab lab: [${Math.min(i + 1, total)}/${total}] ${label}${sec ? ` (≈${Math.round(sec)} s left)` : ''}\n`),
      stop: () => undefined,
    };
  }
  const bar = new cliProgress.SingleBar({ format: 'wslab lab [{bar}] {value}/{total} {label} ETA {left}s', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
  return {
    start: (n, sec) => bar.start(n, 0, { label: '', left: Math.round(sec) }),
    step: (i, label, sec) => bar.update(i, { label, left: Math.round(sec) }),
    stop: () => bar.stop(),
  };
}

export const labCommand = {
  command: 'lab',
  describe: 'Run every design through the seed scenarios and write a report with verdicts (npm start)',
  builder: (y: Argv) => y
    .option('designs', { type: 'string', array: true, describe: `designs to include, comma-separated (default: all: ${[...DESIGNS.keys()].join(', ')})` })
    .option('targets', { type: 'string', describe: 'a YAML or JSON file of servers of your own to run beside the designs (docs/targets.md); name them in --designs' })
    .option('scenarios', { type: 'string', array: true, describe: `scenarios to run (default: ${DEFAULT_SCENARIOS.join(', ')}; by name only: ${[...SCENARIOS.values()].filter((s) => s.optIn).map((s) => s.id).join(', ')})` })
    .option('scale', { type: 'string', default: 'default', describe: 'quick (≈ 90 s), default (≤ 6 min), full (as far as the machine allows), max (idle-hold only: --connections on one box, budgeted first)' })
    .option('connections', { type: 'string', describe: `--scale max: idle connections to hold (default ${MAX_DEFAULTS.connections})` })
    .option('hold', { type: 'string', describe: `--scale max: how long to hold them, e.g. 60s (default ${MAX_DEFAULTS.hold})` })
    .option('out', { type: 'string', default: 'reports', describe: 'folder for reports/<timestamp>/{index.html,report.md,results.json}' })
    .option('wait-quiet', { type: 'string', describe: `before the first cell, wait until 2 s pass with under ${QUIET_LIMIT.outsideCores} cores used outside the run, at most this long (bare: ${WAIT_QUIET_DEFAULT_MS / 1000} s); every cell is marked quiet or busy either way` })
    .option('via', { type: 'string', array: true, describe: `also run each of our designs behind a proxy: ${PROXIES.join(', ')} (the Debian binaries; such cells are shown beside the others, not judged)` })
    .option('deflate', { type: 'boolean', describe: 'also run each of our designs that negotiates permessage-deflate with --deflate, its clients offering it (cells shown beside the others, not judged)' })
    .option('via-profile', { type: 'string', array: true, describe: `--via: the proxies' settings, comma-separated: ${VIA_PROFILES.join(', ')} (default: default)` })
    .option('repeat', { type: 'string', describe: `run every cell N times (1–${MAX_REPEAT}), design after design in rounds: tables show the median with min–max, a claim is decided only when every run decides it alike` })
    .option('profile', { type: 'string', describe: `after each cell, profile it with clinic (${PROFILE_TOOLS.join(' | ')}; optional dependency) and link the report` })
    .options(WEB_FLAGS)
    .example('$0 lab --scale quick --scenarios idle-hold,blocking-call', 'a one-minute look at two claims')
    .example('$0 lab --scenarios idle-hold,slow-client-dos --via nginx,haproxy --via-profile default,hardened', 'every design also behind each proxy, as shipped and hardened')
    .example('$0 lab --scale quick --repeat 3', 'every quick cell three times: medians, spreads, and verdicts every run agrees on')
    .example('$0 lab --scenarios idle-hold --scale max', 'a million idle connections held 60 s on this box (refused if they cannot fit)'),
  handler: async (a: Record<string, unknown>) => {
    const o = labOptions(a);
    const wo = webOptions(a);
    if (o.max) {
      const p = o.max.plan;
      process.stderr.write(`wslab lab: ${p.connections.toLocaleString('en-US')} connections: ${p.serverWorkers} server + ${p.swarmWorkers} swarm processes over ${p.sourceIps}, ` +
        `budget ≈${(p.need.total / 2 ** 30).toFixed(1)} GiB of ${(p.availableBytes / 2 ** 30).toFixed(1)} GiB available; first limit: ${p.limits[0].name} at ≈${p.limits[0].allows.toLocaleString('en-US')}\n`);
    }
    const web = wo && await LiveWeb.open(wo, 'wslab lab');
    if (web) {
      process.stderr.write(`wslab lab: live view on ${web.url}\n`);
      web.publish({ type: 'hello', kind: 'lab', title: `wslab lab --scale ${o.scale}`, startedAt: new Date().toISOString(), pid: process.pid });
    }
    if (o.waitQuietMs !== undefined) {
      process.stderr.write(`wslab lab: waiting for a quiet box (under ${QUIET_LIMIT.outsideCores} cores used outside the run for 2 s, at most ${o.waitQuietMs / 1000} s)\n`);
      const { noise, waitedSec } = await waitQuiet(o.waitQuietMs);
      process.stderr.write(noise.quiet ? `wslab lab: quiet after ${waitedSec} s (${describeNoise(noise)})\n`
        : `wslab lab: still busy after ${waitedSec} s (${describeNoise(noise)}): running anyway, each cell says how busy it was\n`);
    }
    let ran: Awaited<ReturnType<typeof runLab>>;
    try {
      ran = await runLab(o, progressView(), web && labPublisher(web));
    } catch (err) {
      await web?.close({ type: 'end', status: `failed: ${(err as Error).message}`, lines: [], files: [] });
      throw err;
    }
    const { results, dir } = ran;
    process.stdout.write(`${summaryLines(results).join('\n')}\n`);
    const failed = results.scenarios.flatMap((s) => s.cells.filter((c) => c.status === 'failed').map((c) => `${s.id} × ${c.design}: ${c.cause}`));
    for (const f of failed) process.stdout.write(`! ${f}\n`);
    const last = `report: ${dir}/index.html (also report.md, results.json; ${claimsLine(results.claims, results.claims.length)} in ${results.durationSec} s)`;
    process.stdout.write(`${last}\n`);
    if (web) {
      const html = path.resolve(dir, 'index.html');
      await web.close({
        type: 'end', status: results.interrupted ? `interrupted (${results.interrupted})` : failed.length ? `done, ${failed.length} cell${failed.length === 1 ? '' : 's'} failed` : 'done',
        lines: [...summaryLines(results), ...failed.map((f) => `! ${f}`), last],
        files: [html, path.resolve(dir, 'report.md'), path.resolve(dir, 'results.json')], reportHtml: await readFile(html, 'utf8'),
      });
    }
    if (results.interrupted) {
      process.stderr.write(`wslab lab: interrupted (${results.interrupted}): the report holds the finished cells\n`);
      process.exit(results.interrupted === 'SIGINT' ? 130 : 143);
    }
  },
};
