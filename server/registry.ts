import { clusterDesign } from './cluster.js';
import type { Design } from './design.js';
import { threadsDesign } from './threads.js';
import { uwsDesign } from './uws.js';
import { wsDesign } from './ws.js';

/** Every design the lab knows. The CLI, the protocol suite and the lab iterate this map; a design joins by one line. */
export const DESIGNS: ReadonlyMap<string, Design> = new Map([wsDesign, uwsDesign, threadsDesign, clusterDesign].map((d) => [d.name, d]));
