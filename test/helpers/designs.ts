import { DESIGNS } from '../../server/registry.js';

/**
 * The designs the protocol suite runs against: every registered design with its default flags, plus variants
 * that change how it behaves (a thread pool). A new design joins the suite by joining the registry.
 */
export interface DesignCase {
  readonly label: string;
  readonly design: string;
  readonly flags: readonly string[];
  readonly model: 'loop' | 'threads' | 'processes';
  /** uWebSockets.js fixes its handshake timeout at 10 s; other designs take --handshake-timeout. */
  readonly handshakeTimeoutFlag: boolean;
  /**
   * uWebSockets.js 20.30 deviates from RFC 6455 where docs/protocol.md says so: invalid UTF-8 and oversize messages
   * end the TCP connection without a close frame, and an unmasked client frame is misread as masked rather than
   * refused (the full table: ONE_OF_EACH in fuzz/frames.ts).
   */
  readonly uwsFrames: boolean;
  /** Connections the design serves at once: a pool serves --pool of them, the rest wait in its queue. */
  readonly capacity: number;
}

const VARIANTS: Record<string, readonly (readonly string[])[]> = {
  threads: [[], ['--pool', '4']],
  cluster: [['--workers', '2', '--inner', 'uws'], ['--workers', '2', '--inner', 'ws']],
};

export const DESIGN_CASES: readonly DesignCase[] = [...DESIGNS.values()].flatMap((d) =>
  (VARIANTS[d.name] ?? [[]]).map((flags) => ({
    label: [d.name, ...flags].join(' '),
    design: d.name,
    flags,
    model: d.model,
    handshakeTimeoutFlag: d.name !== 'uws' && !(d.name === 'cluster' && flags.includes('uws')),
    uwsFrames: d.name === 'uws' || (d.name === 'cluster' && flags.includes('uws')),
    capacity: flags.includes('--pool') ? Number(flags[flags.indexOf('--pool') + 1]) : Infinity,
  })),
);
