import type { Argv } from 'yargs';
import { fromArgs, yargsOptions, type OptionDef } from '../core/flags.js';
import { DEFAULT_DESIGN, SERVE_DEFAULTS, SERVE_OPTIONS, type CommonServeOptions, type ServeOptions } from '../server/options.js';
import { DESIGNS } from '../server/registry.js';
import { serve } from '../server/serve.js';
import { proxyUnavailable } from '../server/via/proxy.js';
import { UsageError } from '../core/errors.js';
import { WEB_FLAGS, webOptions } from '../web/options.js';

/** The host/port flags of `wslab serve` alone: the lab and profile pick their own. */
const LISTEN_KEYS = ['host', 'port', 'metricsHost', 'metricsPort'] as const satisfies readonly (keyof CommonServeOptions)[];

/** Every design's own flags, merged: the same flag name means the same thing in every design that declares it. */
const designFlags = (): Record<string, OptionDef<unknown>> => Object.assign({}, ...[...DESIGNS.values()].map((d) => d.flags));

/** Flags shared by every command that starts a server (serve, lab, profile): same names, same meaning. */
export function serverFlags<T>(y: Argv<T>) {
  // No yargs defaults (the definitions hold them, applied in serveOptions), so that a flag the user gave can be told
  // from one left alone: --no-defenses conflicts only with the given ones.
  const common = Object.fromEntries(Object.entries(SERVE_OPTIONS).filter(([k]) => !(LISTEN_KEYS as readonly string[]).includes(k)));
  return y.options(yargsOptions(common)).options(yargsOptions(designFlags()));
}

type Raw = Record<string, unknown>;

/** The flags that set a defence, and their option; --no-defenses refuses them unless 0. */
const LIMIT_KEYS = ['maxPayload', 'idleTimeoutMs', 'maxBackpressure', 'handshakeTimeoutMs', 'maxConnsPerIp'] as const satisfies readonly (keyof CommonServeOptions)[];

/** Checks every server flag once and returns the frozen options the servers receive. */
export function serveOptions(a: Raw): ServeOptions {
  const name = String(a.design ?? DEFAULT_DESIGN);
  const design = DESIGNS.get(name);
  if (!design) throw new UsageError(`--design: unknown design "${name}" (known: ${[...DESIGNS.keys()].join(', ')})`);
  // a flag of another design is refused, not ignored: `--design ws --pool 8` would otherwise run a plain ws server
  const mine = new Set(Object.values<OptionDef<unknown>>(design.flags).map((d) => d.flag));
  for (const other of DESIGNS.values()) {
    if (other === design) continue;
    const stray = Object.values<OptionDef<unknown>>(other.flags).find((d) => a[d.flag] !== undefined && !mine.has(d.flag));
    if (stray) {
      const owners = [...DESIGNS.values()].filter((d) => Object.values<OptionDef<unknown>>(d.flags).some((f) => f.flag === stray.flag)).map((d) => d.name);
      throw new UsageError(`--${stray.flag} applies to --design ${owners.join(' or ')} only (this is --design ${name})`);
    }
  }
  const own = fromArgs(design.flags, a);
  const o: ServeOptions = { design: name, ...fromArgs(SERVE_OPTIONS, a), own: Object.freeze(own) };
  if (!o.defenses) {
    // A limit given as 0 says "off" too (a lab scenario's --idle-timeout 0), so only a real limit conflicts.
    const given = LIMIT_KEYS.filter((k) => a[SERVE_OPTIONS[k].flag] !== undefined && o[k] !== 0).map((k) => SERVE_OPTIONS[k].flag);
    if (given.length) throw new UsageError(`--no-defenses turns every limit off, so it conflicts with --${given.join(', --')}: drop one or the other`);
    // --no-defenses: every defence off (0), for experiments that show what the defences are for.
    Object.assign(o, Object.fromEntries(LIMIT_KEYS.map((k) => [k, 0])));
  } else {
    if (o.maxPayload < 125 || o.maxPayload > 256 * 1024 * 1024) throw new UsageError('--max-payload: must be from 125 bytes to 256MiB');
    if (o.maxBackpressure < 1) throw new UsageError('--max-backpressure: must be at least 1 byte');
    if (o.handshakeTimeoutMs < 100) throw new UsageError('--handshake-timeout: must be at least 100ms');
    if (o.idleTimeoutMs !== 0 && o.idleTimeoutMs < 200) throw new UsageError('--idle-timeout: must be 0 (off) or at least 200ms');
    const fixed = design.traits(own).fixedHandshakeTimeout;
    if (fixed && o.handshakeTimeoutMs !== SERVE_DEFAULTS.handshakeTimeoutMs) {
      const free = [...DESIGNS.values()].filter((d) => d.model !== 'processes' && !d.traits(fromArgs(d.flags, {})).fixedHandshakeTimeout).map((d) => d.name);
      throw new UsageError(`--handshake-timeout: ${fixed.by} fixes the handshake timeout at ${fixed.ms / 1000}s (${fixed.why}); use --design ${free.join(' or ')} to vary it`);
    }
  }
  if (o.via === 'none' && a[SERVE_OPTIONS.viaProfile.flag] !== undefined) throw new UsageError('--via-profile applies with --via nginx or --via haproxy only');
  if (o.via !== 'none') {
    const why = proxyUnavailable(o.via);
    if (why) throw new UsageError(`--via ${o.via}: ${why}`);
  }
  if (o.deflate && !design.traits(own).deflate) {
    const can = [...DESIGNS.values()].filter((d) => d.traits(fromArgs(d.flags, {})).deflate).map((d) => d.name);
    throw new UsageError(`--deflate: --design ${name} does not negotiate permessage-deflate; use --design ${can.join(', ')}`);
  }
  design.validate?.(o);
  if (o.port !== 0 && o.port === o.metricsPort && o.host === o.metricsHost) {
    throw new UsageError(`--port and --metrics-port are both ${o.port}: give them different ports (or 0 for any free port)`);
  }
  return Object.freeze(o);
}

export const serveCommand = {
  command: 'serve',
  describe: 'Run one server design speaking the wslab protocol, with Prometheus metrics',
  builder: (y: Argv) => serverFlags(y
    .option('design', { type: 'string', default: DEFAULT_DESIGN, describe: `server design: ${[...DESIGNS.keys()].join(' | ')}` })
    .options(yargsOptions(Object.fromEntries(LISTEN_KEYS.map((k) => [k, SERVE_OPTIONS[k]]))))
    .options(WEB_FLAGS))
    .example('$0 serve --design uws --port 8080', 'the uWebSockets.js single loop on ws://127.0.0.1:8080/'),
  handler: (a: Raw) => {
    const o = serveOptions(a);
    return serve(o, webOptions(a));
  },
};
