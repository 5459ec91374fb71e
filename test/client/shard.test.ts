import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { parseShard, shardConnections, shardSlice, shardSources, shardTargets } from '../../client/shard.js';
import { WSLAB } from '../../lab/processes.js';

const shards = (of: number) => Array.from({ length: of }, (_, index) => ({ index, of }));

describe('shard slicing', () => {
  it('the N counts sum exactly to --connections, differ by at most one, and tile 0..C-1 in order', () => {
    for (const [total, of] of [[1000, 3], [1001, 3], [1002, 3], [7, 7], [1_000_000, 52], [999_999, 64], [10, 1]]) {
      const parts = shards(of).map((s) => shardConnections(total, s));
      assert.equal(parts.reduce((a, p) => a + p.count, 0), total, `${total}/${of}`);
      const counts = parts.map((p) => p.count);
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `${total}/${of}: ${counts}`);
      let next = 0;
      for (const p of parts) {
        assert.equal(p.first, next, `${total}/${of}`);
        next += p.count;
      }
    }
    assert.deepEqual(shards(3).map((s) => shardConnections(1001, s).count), [334, 334, 333]);
  });

  it('source addresses: disjoint, every address used once, refused when fewer than the shards', () => {
    const sources = Array.from({ length: 59 }, (_, i) => `127.0.0.${i + 2}`);
    const parts = shards(4).map((s) => shardSources(sources, s));
    const all = parts.flat();
    assert.equal(all.length, sources.length);
    assert.equal(new Set(all).size, sources.length, 'an address went to two shards');
    assert.deepEqual(parts[1].slice(0, 2), ['127.0.0.3', '127.0.0.7']);
    assert.deepEqual(shardSources([], { index: 2, of: 3 }), []);
    assert.throws(() => shardSources(['127.0.0.2', '127.0.0.3'], { index: 0, of: 3 }), /--source-ips: 2 addresses cannot be split over 3 shards/);
  });

  it('URLs: dealt out when there are at least N; otherwise rotated so the union matches one unsharded swarm', () => {
    const urls = ['a', 'b', 'c', 'd', 'e'];
    assert.deepEqual(shards(2).map((s) => shardTargets(urls, s, 0)), [['a', 'c', 'e'], ['b', 'd']]);
    // 2 URLs, 3 shards of 1001 connections: connection g goes to URL g mod 2, as without shards
    const two = ['x', 'y'];
    const perUrl = { x: 0, y: 0 };
    for (const s of shards(3)) {
      const slice = shardSlice({ connections: 1001, sources: [], targets: two }, s);
      for (let local = 0; local < slice.connections; local++) perUrl[slice.targets[local % slice.targets.length] as 'x' | 'y']++;
      assert.equal(slice.targets[0], two[slice.first % 2]);
    }
    assert.deepEqual(perUrl, { x: 501, y: 500 });
  });

  it('refuses a shard that would open nothing', () => {
    assert.throws(() => shardSlice({ connections: 2, sources: [], targets: ['a'] }, { index: 2, of: 3 }), /--connections 2 is fewer than 3 shards/);
  });
});

describe('--shard / --shards / JOB_COMPLETION_INDEX', () => {
  it('parses i/N, or N with the index from the Job', () => {
    assert.deepEqual(parseShard('2/5', undefined, undefined), { index: 2, of: 5 });
    assert.deepEqual(parseShard(' 0 / 1 ', undefined, '7'), { index: 0, of: 1 }, '--shard wins over the environment');
    assert.deepEqual(parseShard(undefined, '5', '4'), { index: 4, of: 5 });
    assert.deepEqual(parseShard('1/3', '3', undefined), { index: 1, of: 3 });
    assert.equal(parseShard(undefined, undefined, '3'), undefined, 'the environment alone does not shard');
  });

  const bad: [unknown, unknown, string | undefined, RegExp][] = [
    ['3/3', undefined, undefined, /--shard: index 3 is not below N = 3 \(shards are numbered 0 to 2\)/],
    ['1/0', undefined, undefined, /--shard: N must be from 1 to 10000/],
    ['one/3', undefined, undefined, /--shard: "one\/3" is not i\/N/],
    ['-1/3', undefined, undefined, /is not i\/N/],
    ['1/3', '4', undefined, /--shard 1\/3 and --shards 4 name different shard counts/],
    [undefined, '3', undefined, /--shards needs the shard index: set JOB_COMPLETION_INDEX/],
    [undefined, '3', 'x', /JOB_COMPLETION_INDEX: "x" is not a whole number/],
    [undefined, '3', '3', /index 3 is not below N = 3/],
    [undefined, 'many', '0', /--shards: "many" must be a whole number/],
  ];
  it('rejects bad values with a message naming the flag', () => {
    for (const [shard, of, env, pattern] of bad) assert.throws(() => parseShard(shard, of, env), pattern, `${shard} ${of} ${env}`);
  });

  it('the CLI: one line on stderr, exit 1, before connecting anything', () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--shard', '3/3'], {}, /^wslab: --shard: index 3 is not below N = 3/],
      [['--shards', '3'], { JOB_COMPLETION_INDEX: 'x' }, /^wslab: JOB_COMPLETION_INDEX: "x"/],
      [['--shard', '0/3', '--source-ips', '127.0.0.2'], {}, /^wslab: --source-ips: 1 address cannot be split over 3 shards/],
      [['--shard', '0/3', '--mix', 'slowloris:10,chatty:5'], {}, /^wslab: --shard\/--shards do not combine with --mix yet/],
    ];
    for (const [args, env, pattern] of cases) {
      const r = spawnSync(process.execPath, [WSLAB, 'swarm', '--url', 'ws://127.0.0.1:1/', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 15_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
    }
  });
});
