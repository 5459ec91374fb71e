import { performance } from 'node:perf_hooks';
import type { Command } from '../metrics/index.js';

/**
 * The wire protocol of docs/protocol.md for the single-loop designs (the native thread design has its C++ twin).
 * Replies go through a design-supplied `respond` function with the socket passed as an argument rather than
 * captured, so a request allocates its reply string and nothing per connection.
 */
export type Respond<S> = (socket: S, reply: string, command: Command, startedMs: number) => void;

export const LIMITS = Object.freeze({ idBytes: 32, waitMs: 60_000, blockMs: 60_000, cpuUnits: 1_000_000, fillBytes: 8 * 1024 * 1024 });
const ROUNDS_PER_UNIT = 1000;

/** `n` units of the protocol's deterministic CPU work; returns the 8-hex-digit result. */
export function cpuWork(n: number): string {
  let x = (0x9e3779b9 ^ n) >>> 0;
  for (let i = n * ROUNDS_PER_UNIT; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return (x >>> 0).toString(16).padStart(8, '0');
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the calling thread (the whole event loop) for `ms`: the time.sleep() mistake, on purpose. */
export function blockFor(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

const DIGITS = /^\d{1,9}$/;
function integer(arg: string | undefined, max: number): number {
  return arg !== undefined && DIGITS.test(arg) ? (Number(arg) <= max ? Number(arg) : -1) : -1;
}

/** Handles one text request: parses it, runs the verb and hands the reply to `respond` (later, for `wait`). */
export function dispatch<S>(socket: S, text: string, respond: Respond<S>): void {
  const started = performance.now();
  const sp = text.indexOf(' ');
  const idEnd = sp < 0 ? text.length : sp;
  if (idEnd === 0 || Buffer.byteLength(text.slice(0, Math.min(idEnd, 128))) > LIMITS.idBytes) {
    return respond(socket, '- err bad_request missing or oversized request id', 'invalid', started);
  }
  const id = text.slice(0, idEnd);
  if (sp < 0) return respond(socket, `${id} err unknown_command missing command`, 'invalid', started);
  const sp2 = text.indexOf(' ', sp + 1);
  const verb = sp2 < 0 ? text.slice(sp + 1) : text.slice(sp + 1, sp2);
  const arg = sp2 < 0 ? undefined : text.slice(sp2 + 1);
  let n: number;
  switch (verb) {
    case 'echo':
      return respond(socket, `${id} ok ${arg ?? ''}`, 'echo', started);
    case 'wait':
      if ((n = integer(arg, LIMITS.waitMs)) < 0) break;
      setTimeout(respond, n, socket, `${id} ok ${n}`, 'wait', started);
      return;
    case 'block':
      if ((n = integer(arg, LIMITS.blockMs)) < 0) break;
      blockFor(n);
      return respond(socket, `${id} ok ${n}`, 'block', started);
    case 'cpu':
      if ((n = integer(arg, LIMITS.cpuUnits)) < 0) break;
      return respond(socket, `${id} ok ${cpuWork(n)}`, 'cpu', started);
    case 'fill':
      if ((n = integer(arg, LIMITS.fillBytes)) < 0) break;
      return respond(socket, `${id} ok ${'x'.repeat(n)}`, 'fill', started);
    default:
      // Cutting at 32 UTF-16 units may split a surrogate pair: toWellFormed() makes the half U+FFFD, as Buffer.from
      // and the native design do, where uWS would encode it as invalid UTF-8 in a text frame (found by the fuzzer).
      return respond(socket, `${id} err unknown_command ${wellFormed(verb.slice(0, 32))}`, 'invalid', started);
  }
  respond(socket, `${id} err bad_argument ${verb} takes an integer 0-${limitOf(verb)}`, 'invalid', started);
}

const wellFormed = (s: string): string => (s as string & { toWellFormed(): string }).toWellFormed();

function limitOf(verb: string): number {
  return verb === 'cpu' ? LIMITS.cpuUnits : verb === 'fill' ? LIMITS.fillBytes : LIMITS.waitMs;
}
