import type { Argv } from 'yargs';
import { fromArgs, toArgv, type OptionDefs } from '../core/flags.js';
import { SERVE_OPTIONS } from '../server/options.js';
import { ClinicUnavailableError, PROFILE_TOOLS, preflight, profile, SWARM_RECIPES, type ProfileOptions, type ProfileTool } from '../lab/profile.js';
import { SCENARIOS } from '../lab/scenarios/index.js';
import { DESIGNS } from '../server/registry.js';
import { UsageError } from '../core/errors.js';
import { serveOptions, serverFlags } from './serve.js';
import { outputDir, parseDuration } from '../core/units.js';

type Raw = Record<string, unknown>;

/** The flags the user gave whose value is not the default, as argv, by the definitions `defs`. */
function givenFlags(defs: OptionDefs<Record<string, unknown>>, a: Raw, values: Record<string, unknown>): string[] {
  const keys = Object.keys(defs).filter((k) => a[defs[k].flag] !== undefined && values[k] !== defs[k].default);
  return toArgv(defs, Object.fromEntries(keys.map((k) => [k, values[k]])));
}

/**
 * Checks the profile flags once (server flags through serveOptions, as `serve` does) into the options profile()
 * takes. A server flag the user set (its value differs from serverFlags()' default) goes on to the profiled
 * `wslab serve` and wins over the scenario's own server flags; the defaults do not, so a scenario's
 * `--idle-timeout 0` holds unless the user says otherwise.
 */
export function profileOptions(a: Raw): ProfileOptions {
  const tool = String(a.tool);
  if (!(PROFILE_TOOLS as readonly string[]).includes(tool)) throw new UsageError(`--tool: "${tool}" is not one of ${PROFILE_TOOLS.join(', ')}`);
  const scenario = String(a.scenario);
  if (!SCENARIOS.has(scenario) || !SWARM_RECIPES[scenario]) throw new UsageError(`--scenario: unknown scenario "${scenario}" (known: ${[...SCENARIOS.keys()].join(', ')})`);
  const o = serveOptions(a); // every server flag checked exactly as `wslab serve` checks it, design included
  const durationMs = parseDuration('duration', a.duration ?? '5s');
  if (durationMs < 2000 || durationMs > 600_000) throw new UsageError('--duration: must be from 2s to 10m');
  // the common limits as given (not zeroed by --no-defenses: the profiled server applies that itself)
  const common = givenFlags(SERVE_OPTIONS as OptionDefs<Record<string, unknown>>, a, { ...o, ...fromArgs(SERVE_OPTIONS, a) });
  const own = givenFlags(DESIGNS.get(o.design)!.flags as OptionDefs<Record<string, unknown>>, a, o.own);
  return Object.freeze({
    tool: tool as ProfileTool, design: String(a.design), scenario, durationMs, out: outputDir('out', a.out ?? 'profiles'),
    serverFlags: [...own, ...common],
  });
}

export const profileCommand = {
  command: 'profile',
  describe: 'Profile one server design with clinic (doctor | flame | bubbleprof) while a scenario\'s swarm drives it (clinic is optional)',
  builder: (y: Argv) => serverFlags(y
    .option('tool', { type: 'string', demandOption: true, describe: `clinic tool: ${PROFILE_TOOLS.join(' | ')} (doctor: what kind of problem; flame: which function; bubbleprof: which async wait)` })
    .option('design', { type: 'string', demandOption: true, describe: `server design: ${[...DESIGNS.keys()].join(' | ')} (clinic cannot follow cluster workers; threads: JS side only)` })
    .option('scenario', { type: 'string', demandOption: true, describe: `lab scenario whose load drives the server: ${[...SCENARIOS.keys()].join(' | ')}` })
    .option('duration', { type: 'string', default: '5s', describe: 'how long the swarm runs' })
    .option('out', { type: 'string', default: 'profiles', describe: 'folder for <scenario>-<design>-<time>.clinic-<tool>.html and its data folder' }))
    .example('$0 profile --tool doctor --design ws --scenario blocking-call', 'what kind of problem one `block 2000` is to a single loop')
    .example('$0 profile --tool flame --design ws --scenario blocking-call', 'which function holds the loop'),
  handler: async (a: Raw) => {
    const o = profileOptions(a);
    try {
      const { caveat } = preflight(o);
      process.stderr.write(`wslab profile: clinic ${o.tool} on ${o.design} under ${o.scenario} for ${o.durationMs / 1000} s\n`);
      if (caveat) process.stderr.write(`wslab profile: note: ${caveat}\n`);
      const r = await profile(o, (line) => process.stderr.write(`  ${line}\n`));
      const lines = [`report: ${r.html}`, `data: ${r.data}`, ...r.findings];
      if (r.caveat) lines.push(`note: ${r.caveat}`);
      process.stdout.write(`${lines.join('\n')}\n`);
      if (r.interrupted) process.exitCode = 130;
    } catch (err) {
      // The CLI's one-line, exit-1 path: clinic is optional, so its absence or failure is not a crash of wslab.
      if (err instanceof ClinicUnavailableError) throw new UsageError(err.message);
      throw err;
    }
  },
};
