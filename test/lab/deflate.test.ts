import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { WSLAB } from '../../lab/processes.js';
import type { LabResults } from '../../lab/results.js';

/**
 * `wslab lab --deflate`: each of our designs that negotiates permessage-deflate also runs with `--deflate`, driven by
 * clients that offer it, as a cell of its own beside the others; the verdicts judge the designs as they are.
 */
const lab = (...args: string[]) => spawnSync(process.execPath, [WSLAB, 'lab', ...args], { encoding: 'utf8', timeout: 120_000 });

describe('wslab lab --deflate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wslab-lab-deflate-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('idle-hold: uws also runs compressing (every client negotiated it), threads does not (it cannot), verdicts from uws as it is', { timeout: 130_000 }, () => {
    const r = lab('--scale', 'quick', '--scenarios', 'idle-hold', '--designs', 'uws,threads', '--deflate', '--out', dir);
    assert.equal(r.status, 0, r.stderr);
    const out = join(dir, readdirSync(dir)[0]);
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as LabResults;
    const cells = res.scenarios[0].cells;
    assert.deepEqual(cells.map((c) => c.design), ['uws', 'threads', 'uws --deflate']);
    assert.deepEqual(cells.map((c) => c.status), ['ok', 'ok', 'ok'], JSON.stringify(cells.map((c) => c.cause)));
    assert.deepEqual(cells.map((c) => c.traits.compressing), [undefined, undefined, true]);
    assert.deepEqual(cells.map((c) => c.traits.representative), [true, false, false]);
    for (const c of cells) assert.equal(c.figures.held, 1000, c.design);
    assert.deepEqual(cells[2].notes, ['uws --deflate: permessage-deflate accepted on 1,000 of 1,000 connections']);
    assert.equal(cells[0].notes, undefined, 'clients of the plain cell offer nothing');
    assert.notEqual(cells[2].figures.rssPerConnectionBytes, null);
    const loop = res.claims.find((c) => c.id === 'loop-unlimited-connections')!;
    assert.equal(loop.verdict, 'confirmed');
    assert.doesNotMatch(loop.evidence, /--deflate/);
  });

  it('refuses --deflate with --scale max in one line before any work', () => {
    const r = lab('--scenarios', 'idle-hold', '--scale', 'max', '--deflate', '--out', join(dir, 'never'));
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr.trim(), /^wslab: --deflate does not apply to --scale max/);
  });
});
