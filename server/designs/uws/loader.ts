import { createRequire } from 'node:module';

export type Uws = typeof import('@trufflesuite/uws-js-unofficial');

const require = createRequire(import.meta.url);
/** Tried in order: an installed official build, then the binary mirror on npm (Node 16/18/20 only). */
const CANDIDATES = ['uWebSockets.js', '@trufflesuite/uws-js-unofficial'] as const;

let loaded: { uws: Uws; version: string } | undefined;

/**
 * Loads uWebSockets.js once. It is a native binary per Node ABI, so it can be present and still fail to load on a
 * newer Node; then the error names the Node version and the fix, and the other designs keep working.
 */
export function loadUws(): { uws: Uws; version: string } {
  if (loaded) return loaded;
  const failures: string[] = [];
  for (const name of CANDIDATES) {
    try {
      const uws = require(name) as Uws;
      const version: string = require(`${name}/package.json`).version ?? 'unknown';
      // uWS prints a banner on load in some builds; keep stdout clean for the ready line.
      return (loaded = { uws, version: `${name} ${version}` });
    } catch (err) {
      failures.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new UwsUnavailableError(
    `design uws: uWebSockets.js does not load on Node ${process.version} (${process.arch}, ABI ${process.versions.modules}). ` +
      `Install an official build for this Node (npm install uNetworking/uWebSockets.js#v20.52.0) or run Node 20 ` +
      `for the @trufflesuite/uws-js-unofficial mirror. Tried: ${failures.join('; ')}`,
  );
}

export class UwsUnavailableError extends Error {
  readonly code = 'WSLAB_UWS_UNAVAILABLE';
}
