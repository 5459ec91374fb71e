import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromArgv, toArgv, yargsOptions, type OptionDef, type OptionDefs } from '../../core/flags.js';
import yargs from 'yargs';
import { swarmOptions } from '../../cli/swarm.js';
import { SWARM_FLAGS, type SwarmFlags } from '../../client/flags.js';
import { variant, variantOf } from '../../lab/designs.js';
import { SERVE_OPTIONS } from '../../server/options.js';
import { DESIGNS } from '../../server/registry.js';

/** A value of each option that is not its default, so a round trip that dropped it would show. */
function notDefault(d: OptionDef<unknown>): unknown {
  switch (d.type) {
    case 'boolean': return !d.default;
    case 'number': return Number(d.default) + 1;
    default: return typeof d.default === 'number' ? Number(d.default) * 2 || 5000 : d.default;
  }
}

describe('typed argv: one builder, parsed back by the same definitions', () => {
  const sets: [string, OptionDefs<Record<string, unknown>>][] = [
    ['serve (common)', SERVE_OPTIONS as OptionDefs<Record<string, unknown>>],
    ['swarm', SWARM_FLAGS as OptionDefs<Record<string, unknown>>],
    ...[...DESIGNS.values()].map((d) => [`serve --design ${d.name}`, d.flags as OptionDefs<Record<string, unknown>>] as [string, OptionDefs<Record<string, unknown>>]),
  ];
  for (const [name, defs] of sets) {
    it(`${name}: every option survives toArgv → fromArgv, default and not`, () => {
      for (const [key, d] of Object.entries(defs)) {
        for (const v of [d.default, notDefault(d)]) {
          const argv = toArgv(defs, { [key]: v });
          assert.deepEqual(fromArgv(defs, argv), { [key]: v }, `${key}: ${JSON.stringify(v)} → ${argv.join(' ')}`);
        }
      }
    });
  }

  it('writes units as the CLI reads them and --no- for a false boolean', () => {
    assert.deepEqual(toArgv(SERVE_OPTIONS, { idleTimeoutMs: 0, handshakeTimeoutMs: 4000, maxPayload: 65536, defenses: false }),
      ['--idle-timeout', '0', '--handshake-timeout', '4000ms', '--max-payload', '65536', '--no-defenses']);
  });

  it('refuses an unknown option by name, both ways', () => {
    assert.throws(() => toArgv(SERVE_OPTIONS, { pool: 4 } as never), /no option "pool"/);
    assert.throws(() => fromArgv(SERVE_OPTIONS, ['--pool', '4']), /"--pool" is not one of --host/);
  });

  it('a lab variant reads back as the same variant, label and flags', () => {
    for (const d of [variant('threads', { pool: 64 }), variant('cluster', { workers: 3 }), variant('ws', {}, { defenses: false }), variant('threads', { pool: 256 }, { defenses: false })]) {
      const back = variantOf(d.design, d.flags);
      assert.equal(back.label, d.label);
      assert.deepEqual(back.flags, d.flags);
      assert.deepEqual(back.traits, d.traits);
    }
    assert.equal(variant('threads', { pool: 256 }, { defenses: false }).label, 'threads --pool 256 --no-defenses');
    assert.equal(variant('cluster', { workers: 2, inner: 'uws' }).label, 'cluster --workers 2');
  });

  /** What `wslab swarm` makes of argv the builder wrote, read by yargs as the CLI reads it. */
  const swarmOf = (flags: Partial<SwarmFlags>) => swarmOptions(yargs(['--url', 'ws://127.0.0.1:1/', ...toArgv(SWARM_FLAGS, flags)])
    .options(yargsOptions(SWARM_FLAGS)).parseSync() as Record<string, unknown>);

  it('wslab swarm reads every flag the lab writes as the value it was given', async () => {
    const o = await swarmOf({ connections: 123, rate: 456, maxPending: 7, holdMs: 2500, profile: 'chatty', intervalMs: 250, match: 'echo',
      command: 'wait 5', handshakeTimeoutMs: 1500, sourceIps: '127.0.0.2-127.0.0.3', workers: 2 });
    assert.deepEqual([o.connections, o.rate, o.maxPending, o.holdMs, o.groups[0].profile, o.intervalMs, o.speech.match, o.command.verb, o.command.arg,
      o.handshakeTimeoutMs, [...o.sourceIps], o.workers], [123, 456, 7, 2500, 'chatty', 250, 'echo', 'wait', 5, 1500, ['127.0.0.2', '127.0.0.3'], 2]);
    const mix = await swarmOf({ mix: 'slowloris:10,slow-reader:5@1s', dribbleIntervalMs: 300, dribbleBytes: 2, readRate: 1024 });
    assert.deepEqual(mix.groups.map((g) => [g.profile, g.connections, g.startDelayMs]), [['slowloris', 10, 0], ['slow-reader', 5, 1000]]);
    assert.deepEqual([mix.attack.dribbleIntervalMs, mix.attack.dribbleBytes, mix.attack.readRate], [300, 2, 1024]);
    const big = await swarmOf({ profile: 'oversize', declaredBytes: 64 * 2 ** 20 });
    assert.equal(big.attack.declaredBytes, 64 * 2 ** 20);
  });
});
