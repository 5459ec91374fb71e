import { clusterOf } from './designs/cluster/index.js';
import type { Design } from './design.js';
import { threadsDesign } from './designs/threads/index.js';
import { uwsDesign } from './designs/uws/index.js';
import { wsDesign } from './designs/ws/index.js';

/** The single-loop designs: each runs alone, and as the worker of a cluster (`--inner`). */
const LOOPS = [wsDesign, uwsDesign];

/** Every design the lab knows. The CLI, the protocol suite and the lab iterate this map; a design joins by one line. */
export const DESIGNS: ReadonlyMap<string, Design> = new Map([...LOOPS, threadsDesign, clusterOf(LOOPS)].map((d) => [d.name, d]));
