/**
 * The frame fuzzer (fuzz/frames.ts) against every design of the registry, each started as a user runs
 * it (`wslab serve`): one of each violation answered as the per-design table says, then a bounded run of random valid
 * and malformed frames — every reply checked byte for byte, every ending (close code, empty close, TCP drop) as the
 * design's dialect predicts — after which the server is still up and its `/metrics` counts exactly the closes by
 * reason, the handshakes and the messages the fuzzer caused. Long runs (≥ 1M frames, memory) are bench/fuzz.ts.
 *
 * Reproduce a failure with WSLAB_FUZZ_SEED=<seed in the failure message>.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sumOf } from '../../metrics/exposition.js';
import { CLOSE_REASONS } from '../../metrics/index.js';
import { eventually, spawnServer, type ServerProcess } from '../../lab/processes.js';
import { DESIGN_CASES } from '../helpers/designs.js';
import {
  FrameFuzzer, ONE_OF_EACH, ONE_OF_EACH_MAX_PAYLOAD, RawClient, Rng, answerTo, dialectFor, frame, fuzzConnection, newTotals,
  notation, seedFromEnv, simulate, type Totals,
} from '../../fuzz/frames.js';

const SEED = seedFromEnv();
/** Frames per design: the whole file stays within ~90 s on the 2-vCPU machine (docs: MACHINE.md). */
const FRAMES = 40_000;
const WORKERS = 8;
const MAX_PAYLOAD = 100_000;

/** The server's closes by reason (only those > 0), plus handshakes and messages, as /metrics says. */
async function counted(server: ServerProcess, design: string): Promise<Record<string, number>> {
  const m = await server.scrape();
  const out: Record<string, number> = {
    accepted: sumOf(m, 'wslab_connections_accepted_total', { design }),
    messages: sumOf(m, 'wslab_messages_received_total', { design }),
  };
  for (const reason of CLOSE_REASONS) {
    const n = sumOf(m, 'wslab_connections_closed_total', { design, reason });
    if (n > 0) out[reason] = n;
  }
  return out;
}
const expected = (t: Totals): Record<string, number> => ({ accepted: t.connections, messages: t.messages, ...t.closed });
/** Order-independent, for comparing counts. */
const canon = (r: Record<string, number>): string => JSON.stringify(Object.entries(r).sort(([a], [b]) => a.localeCompare(b)));

for (const dc of DESIGN_CASES) {
  const dialect = dialectFor(dc.dialect);

  describe(`fuzz: ${dc.label} (${dialect.name} dialect)`, () => {
    let server: ServerProcess;
    let port: number;
    before(async () => {
      server = await spawnServer(dc.design, [...dc.flags, '--max-payload', String(MAX_PAYLOAD), '--idle-timeout', '0']);
      port = Number(new URL(server.url).port);
    });
    after(async () => { await server?.stop(); });

    it('answers one of each violation as the per-design table says', async () => {
      const one = await spawnServer(dc.design, [...dc.flags, '--max-payload', String(ONE_OF_EACH_MAX_PAYLOAD)]);
      try {
        const onePort = Number(new URL(one.url).port);
        const byReason: Record<string, number> = {};
        let messages = 0;
        for (const [name, bytes, table] of ONE_OF_EACH) {
          const want = table[dialect.name as keyof typeof table];
          const model = simulate(bytes, ONE_OF_EACH_MAX_PAYLOAD, dialect);
          assert.equal(notation(model), want, `${name}: the model`);
          messages += model.messages;
          const reason = want.slice(want.lastIndexOf(' ') + 1);
          assert.equal(`${await answerTo(onePort, bytes)} ${reason}`, want, `${name}: on the wire`);
          byReason[reason] = (byReason[reason] ?? 0) + 1;
        }
        const t = { ...newTotals(), connections: ONE_OF_EACH.length, messages, closed: byReason };
        assert.ok(await eventually(async () => canon(await counted(one, dc.design)) === canon(expected(t))),
          `closes by reason: ${JSON.stringify(await counted(one, dc.design))} != ${JSON.stringify(expected(t))}`);
      } finally {
        await one.stop();
      }
    });

    it(`survives ${FRAMES} random frames with exact replies, endings and counts (seed ${SEED})`, { timeout: 60_000 }, async () => {
      const t = newTotals();
      const started = Date.now();
      await Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
        const fz = new FrameFuzzer(Rng.forWorker(SEED, w), { maxPayload: MAX_PAYLOAD, orderedWait: dialect.name === 'threads' });
        for (let frames = 0; frames < FRAMES / WORKERS;) frames += await fuzzConnection(port, fz, dialect, t, SEED);
      }));
      const seconds = (Date.now() - started) / 1000;
      console.log(`${dc.label}: seed ${SEED}: ${t.frames} frames (${Math.round(t.frames / seconds)}/s) over ${t.connections} connections`,
        JSON.stringify({ wire: t.wire, violations: t.violations }));
      assert.ok(t.frames >= FRAMES);
      assert.equal(server.child.exitCode, null, `the server exited: ${server.stderr()}`);
      const want = expected(t);
      assert.ok(await eventually(async () => canon(await counted(server, dc.design)) === canon(want)),
        `seed ${SEED}: /metrics ${JSON.stringify(await counted(server, dc.design))} != caused ${JSON.stringify(want)}`);
      const c = await RawClient.open(port);
      c.socket.write(frame({ opcode: 1, payload: Buffer.from('last cpu 1000') }));
      assert.equal((await c.frame()).payload.toString(), 'last ok 2358450d');
      c.socket.destroy();
    });
  });
}
