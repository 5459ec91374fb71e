/**
 * The `--web [port]` and `--web-host` flags of `wslab lab`, `swarm` and `serve`, checked before any work. Light on
 * purpose: every command loads it, and only a run with `--web` loads the page (web/live.ts).
 */
import { isIP } from 'node:net';
import { UsageError } from '../core/errors.js';
import { parseInteger } from '../core/units.js';

export interface WebOptions {
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
}

/** The two flags, declared once for the three commands. */
export const WEB_FLAGS = {
  web: { type: 'string', describe: 'serve a live view of this run on http://127.0.0.1:PORT/ (bare --web or 0 = any free port; the URL is printed on stderr and in the JSON line)' },
  'web-host': { type: 'string', describe: 'address of the --web page (default 127.0.0.1: loopback only)' },
} as const;

/** `--web` and `--web-host` checked into options, or undefined when `--web` was not given. */
export function webOptions(a: Record<string, unknown>): WebOptions | undefined {
  if (a.web === undefined) {
    if (a['web-host'] !== undefined) throw new UsageError('--web-host needs --web (the page is off without it)');
    return undefined;
  }
  // yargs gives an array when the flag is repeated; the last one counts, as for every other flag
  const raw = Array.isArray(a.web) ? a.web.at(-1) : a.web;
  const port = raw === '' || raw === true ? 0 : parseInteger('web', raw, 0, 65535);
  const host = String(a['web-host'] ?? '127.0.0.1');
  if (isIP(host) === 0) throw new UsageError(`--web-host: "${host}" is not an IP address`);
  return Object.freeze({ host, port });
}
