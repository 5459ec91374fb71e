/**
 * `npm run bench [-- <bench> [options]]`: runs one benchmark of bench/ (built into dist/bench/) with its options, or,
 * with no name, lists them. The list is read from the bench/ source folder: every top-level file there that exports a
 * `bench` definition (bench/harness/bench.ts) is one, named by its file, so a new bench joins by being written and no list
 * can drift. The source folder, not dist/bench/, because tsc never deletes: a stale build of a file since moved (a
 * child-process script run at import) must not be imported. Top-level files of bench/ are therefore benches or
 * modules without side effects; the scripts that run as child processes live in bench/clients/. Each
 * bench prints its JSON on stdout; they sit outside `npm test` on purpose (minutes, thousands of sockets, and
 * bench/peers needs Artillery and Tsung installed outside the project).
 */
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runBench, type Bench } from './harness/bench.js';

/** dist/bench/ (this file's folder) and the bench/ it is built from (tsconfig: rootDir ".", outDir "dist"). */
const built = fileURLToPath(new URL('.', import.meta.url));
const source = fileURLToPath(new URL('../../bench/', import.meta.url));
const self = basename(fileURLToPath(import.meta.url), '.js');

/** Every bench of bench/ by name (this file itself is skipped: importing it from itself would never settle). */
async function benches(): Promise<Map<string, Bench>> {
  const found = new Map<string, Bench>();
  for (const file of readdirSync(source).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).sort()) {
    const name = basename(file, '.ts');
    if (name === self) continue;
    const mod = await import(pathToFileURL(join(built, `${name}.js`)).href) as { bench?: Bench };
    if (!mod.bench) continue;
    if (mod.bench.name !== name) throw new Error(`bench/${file} defines a bench named "${mod.bench.name}": name it after its file`);
    found.set(name, mod.bench);
  }
  return found;
}

const [name, ...args] = process.argv.slice(2);
const all = await benches();
const bench = name === undefined ? undefined : all.get(name);
if (!bench) {
  const listing = [...all.values()].map((b) => `  ${b.name.padEnd(20)} ${b.describe}`).join('\n');
  const asked = name !== undefined && name !== '--help' && name !== '-h';
  if (asked) process.stderr.write(`bench: unknown bench "${name}"\n`);
  process.stderr.write(`usage: npm run bench -- <bench> [options]   (npm run bench -- <bench> --help: its options)\n${listing}\n`);
  process.exit(asked ? 1 : 0);
}
await runBench(bench, args);
