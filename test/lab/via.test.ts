import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { WSLAB } from '../../lab/processes.js';
import type { LabResults } from '../../lab/results.js';
import { proxyUnavailable } from '../../server/via/proxy.js';

/**
 * `wslab lab --via`: each of our designs also runs behind the real nginx and HAProxy, as a cell of its own whose
 * process tree holds the proxy (so its memory per connection includes the proxy's); such cells are shown beside the
 * others and not judged (the claims are about the designs).
 */
const skip = (['nginx', 'haproxy'] as const).every((p) => proxyUnavailable(p) === undefined) || process.env.CI === 'true'
  ? false : 'needs Debian nginx and haproxy (.ci/run installs them)';
const lab = (...args: string[]) => spawnSync(process.execPath, [WSLAB, 'lab', ...(args.includes('--scale') ? [] : ['--scale', 'quick']), '--scenarios', 'idle-hold', ...args],
  { encoding: 'utf8', timeout: 120_000 });

describe('wslab lab --via', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wslab-lab-via-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs uws directly and behind nginx and HAProxy (hardened): every cell holds its 1,000, the proxies\' memory is in theirs, verdicts judge uws alone', { timeout: 130_000 }, () => {
    const r = lab('--designs', 'uws', '--via', 'nginx,haproxy', '--via-profile', 'hardened', '--out', dir);
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0], 'results.json'), 'utf8')) as LabResults;
    const cells = res.scenarios[0].cells;
    assert.deepEqual(cells.map((c) => c.design), ['uws', 'uws --via nginx --via-profile hardened', 'uws --via haproxy --via-profile hardened']);
    assert.deepEqual(cells.map((c) => c.status), ['ok', 'ok', 'ok'], JSON.stringify(cells.map((c) => c.cause)));
    assert.deepEqual(cells.map((c) => c.traits.via), [undefined, 'nginx hardened', 'haproxy hardened']);
    assert.deepEqual(cells.map((c) => c.traits.representative), [true, false, false]);
    for (const c of cells) assert.equal(c.figures.held, 1000, c.design);
    // the proxy's own count is a series of the cells behind it, and of those only
    assert.equal(cells[0].series.proxyOpen, undefined);
    for (const c of cells.slice(1)) {
      assert.equal(c.series.proxyOpen!.length, c.series.t.length, c.design);
      assert.equal(Math.max(...c.series.proxyOpen!.filter((v): v is number => v !== null)), 1000, c.design);
    }
    const per = (i: number) => cells[i].figures.rssPerConnectionBytes as number;
    // nginx ≈ 18 KiB and HAProxy ≈ 5 KiB per proxied connection (README "Behind a proxy"), uws under 1.5 KiB
    assert.ok(per(1) > per(0) + 8 * 1024, `nginx in front: ${per(1)} B per connection vs ${per(0)} B direct`);
    assert.ok(per(2) > per(0) + 2 * 1024, `HAProxy in front: ${per(2)} B per connection vs ${per(0)} B direct`);
    assert.match(res.machine.designs['uws --via nginx --via-profile hardened'], /via nginx\/[\d.]+ \(hardened\)$/);
    const loop = res.claims.find((c) => c.id === 'loop-unlimited-connections')!;
    assert.equal(loop.verdict, 'confirmed');
    assert.doesNotMatch(loop.evidence, /--via/);
  });

  for (const [args, says] of [
    [['--via', 'squid'], /^wslab: --via: "squid" is not one of nginx, haproxy$/],
    [['--via-profile', 'hardened'], /^wslab: --via-profile applies with --via nginx and\/or haproxy only$/],
    [['--via', 'nginx', '--via-profile', 'paranoid'], /^wslab: --via-profile: "paranoid" is not one of default, hardened$/],
    [['--via', 'nginx', '--scale', 'max'], /^wslab: --via does not apply to --scale max/],
  ] as const) {
    it(`refuses ${args.join(' ')} in one line before any work`, () => {
      const r = lab(...args, '--out', join(dir, 'never'));
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr.trim(), says);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    });
  }
});
