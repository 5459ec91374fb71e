/**
 * bench/run.ts as a user runs it: the list comes from the bench files themselves, every bench answers --help, and a
 * bad flag is one line and exit 1 before any server starts (nothing here opens a socket).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const RUN = fileURLToPath(new URL('../../bench/run.js', import.meta.url));
const SOURCE = fileURLToPath(new URL('../../../bench/', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [RUN, ...args], { encoding: 'utf8', timeout: 15_000 });

/** The benches, read independently of run.ts: the bench/ files that export a definition. */
const BENCHES = readdirSync(SOURCE).filter((f) => f.endsWith('.ts') && /export const bench = defineBench/.test(readFileSync(`${SOURCE}${f}`, 'utf8')))
  .map((f) => f.slice(0, -3));

describe('npm run bench', () => {
  it('lists every bench file, with its description', () => {
    const r = run();
    assert.equal(r.status, 0, r.stderr);
    assert.ok(BENCHES.length >= 6, `found ${BENCHES.join(', ')}`);
    for (const b of BENCHES) assert.match(r.stderr, new RegExp(`^  ${b} +\\S`, 'm'));
  });

  for (const b of BENCHES) {
    it(`${b} --help lists its options and --out`, () => {
      const r = run(b, '--help');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`npm run bench -- ${b} \\[options\\]`));
      assert.match(r.stdout, /--out/);
    });
  }

  const cases: [string[], RegExp][] = [
    [['nope'], /unknown bench "nope"/],
    [['slow-readers', '--hold', '4000'], /^bench\/slow-readers: --hold: "4000" is not a duration \(use e\.g\. 500ms/],
    [['conn-limit', '--designs', 'ws,nope'], /--designs: unknown design "nope" \(ws, uws/],
    [['idle-memory', '--connections', 'many'], /--connections: "many" must be a whole number/],
    [['fuzz', '--max-payload', '1KiB'], /--max-payload: "1KiB" must be at least 20000/],
    [['peers', '--source-ips', '10.0.0.2'], /--source-ips: 10\.0\.0\.2 is not a loopback address/],
    [['swarm-vs-ws-client', '--bogus', '1'], /Unknown argument: bogus/],
  ];
  for (const [args, message] of cases) {
    it(`rejects ${args.join(' ')} with one line and exit 1`, () => {
      const r = run(...args);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, message);
      if (args[0] !== 'nope') assert.equal(r.stderr.trim().split('\n').length, 1, `one line, got:\n${r.stderr}`);
      assert.equal(r.stdout, '');
    });
  }
});
