import { toArgv } from '../../core/flags.js';
import { ownDefaults, type Dialect, type Model, type Traits } from '../../server/design.js';
import type { OwnOptions } from '../../server/options.js';
import { DESIGNS } from '../../server/registry.js';

/**
 * The designs the protocol suite runs against: every registered design with each of its `testVariants` (its
 * defaults when it declares none), described by its traits. A new design joins the suite by joining the registry.
 */
export interface DesignCase {
  readonly label: string;
  readonly design: string;
  readonly flags: readonly string[];
  readonly model: Model;
  readonly traits: Traits;
  /** The design takes --handshake-timeout (uWebSockets.js fixes its own at 10 s). */
  readonly handshakeTimeoutFlag: boolean;
  /**
   * The uWS dialect of RFC 6455 (docs/protocol.md says where it deviates): invalid UTF-8 and oversize messages end
   * the TCP connection without a close frame, and an unmasked client frame is misread as masked rather than refused
   * (the full table: ONE_OF_EACH in the fuzz model).
   */
  readonly uwsFrames: boolean;
  readonly dialect: Dialect;
  /** Connections the design serves at once: a pool serves --pool of them, the rest wait in its queue. */
  readonly capacity: number;
}

export const DESIGN_CASES: readonly DesignCase[] = [...DESIGNS.values()].flatMap((d) =>
  (d.testVariants ?? [{}]).map((own) => {
    const flags = toArgv(d.flags, own);
    const traits = d.traits({ ...ownDefaults(d), ...own } as OwnOptions);
    return {
      label: [d.name, ...flags].join(' '), design: d.name, flags, model: traits.model, traits,
      handshakeTimeoutFlag: traits.fixedHandshakeTimeout === null,
      uwsFrames: traits.dialect === 'uws',
      dialect: traits.dialect,
      // a pool serves its workers at once; a cluster's worker processes each serve without bound
      capacity: traits.model === 'threads' && traits.workers !== null ? traits.workers : Infinity,
    };
  }),
);
