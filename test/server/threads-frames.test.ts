/**
 * Randomised frame fuzz of the native `threads` server in-process (so CI can run it against the AddressSanitizer
 * build): valid traffic — pipelined, fragmented, with interleaved pings and non-minimal length encodings — mixed with
 * malformed frames and random garbage, from the shared fuzzer (fuzz/frames.ts). Its reference model
 * predicts, for any byte stream, the exact frames the server must send back and how the connection must end (close
 * code, or TCP end after an incomplete frame); the test checks every byte of that, then checks the server's counters
 * against the totals. test/server/fuzz.test.ts runs the same fuzzer over every design through `wslab serve`.
 *
 * Reproduce a run with WSLAB_FUZZ_SEED=<seed printed on failure>. Run against the AddressSanitizer build: see
 * native/README.md (WSLAB_THREADS_ADDON + LD_PRELOAD of libasan).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startThreadsServer, type ThreadsServer } from '../../server/designs/threads/addon.js';
import {
  DIALECTS, FrameFuzzer, ONE_OF_EACH, ONE_OF_EACH_MAX_PAYLOAD, RawClient, Rng, answerTo, frame, fuzzConnection, newTotals,
  notation, seedFromEnv, simulate,
} from '../../fuzz/frames.js';

const MAX_PAYLOAD = 100_000;
const FRAME_TARGET = 100_000;
const WORKERS = 8;
const SEED = seedFromEnv();
const native = DIALECTS.threads;

const threadsOptions = (maxPayload: number, histogramBounds: number[]) => ({
  host: '127.0.0.1', port: 0, pool: 0, queueLimit: 0, threadStack: 256 * 1024, maxPayload,
  idleTimeoutMs: 0, maxBackpressure: 1024 * 1024, handshakeTimeoutMs: 10_000, histogramBounds,
});

test('threads server: ≥100k random valid and malformed frames, exact replies and close codes', { timeout: 120_000 }, async () => {
  const server: ThreadsServer = startThreadsServer(threadsOptions(MAX_PAYLOAD, [0.001, 0.01, 0.1, 1]));
  const t = newTotals();
  const started = Date.now();
  try {
    await Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
      const fz = new FrameFuzzer(Rng.forWorker(SEED, w), { maxPayload: MAX_PAYLOAD, orderedWait: true });
      for (let frames = 0; frames < FRAME_TARGET / WORKERS;) frames += await fuzzConnection(server.port, fz, native, t, SEED);
    }));
    const seconds = (Date.now() - started) / 1000;
    console.log(`seed ${SEED}: ${t.frames} frames, ${t.messages} messages over ${t.connections} connections in ${seconds.toFixed(1)} s`,
      JSON.stringify({ ...t.cases, ...t.wire }));
    assert.ok(t.frames >= FRAME_TARGET);
    assert.ok(seconds < 60, `took ${seconds} s`);

    // Counters equal the true totals. A close is counted before the server's close frame or FIN goes out.
    const s = server.stats();
    assert.equal(s.accepted, t.connections);
    assert.equal(s.open, 0);
    assert.deepEqual(s.closed, {
      normal: 0, going_away: 0, protocol_error: 0, too_big: 0, idle_timeout: 0, backpressure: 0, handshake_timeout: 0, error: 0, rejected: 0,
      ...t.closed,
    });
    assert.equal(s.messagesReceived, t.messages);
    assert.equal(s.messagesSent, t.messages);
    assert.equal(s.bytesReceived, t.payloadBytes);
    assert.equal(s.bufferedBytes, 0);
    assert.equal(s.sendDropped, 0);
    const commands = Object.values(s.commands).reduce((n, h) => n + h.count, 0);
    assert.equal(commands, t.messages);
    assert.equal(s.handshake.count, t.connections);
    assert.equal(s.handshake.buckets.at(-1), t.connections);

    // Still serving.
    const c = await RawClient.open(server.port);
    c.socket.write(frame({ opcode: 1, payload: Buffer.from('last cpu 1000') }));
    assert.equal((await c.frame()).payload.toString(), 'last ok 2358450d');
    c.socket.destroy();
  } finally {
    await server.close();
  }
});

test('threads server: one of each protocol violation gets its close code', async () => {
  const server = startThreadsServer(threadsOptions(ONE_OF_EACH_MAX_PAYLOAD, []));
  const counted: Record<string, number> = {};
  try {
    for (const [name, bytes, expect] of ONE_OF_EACH) {
      const model = notation(simulate(bytes, ONE_OF_EACH_MAX_PAYLOAD, native));
      assert.equal(model, expect.threads, `${name}: the model`);
      const reason = expect.threads.slice(expect.threads.lastIndexOf(' ') + 1);
      assert.equal(`${await answerTo(server.port, bytes)} ${reason}`, expect.threads, name);
      counted[reason] = (counted[reason] ?? 0) + 1;
    }
    const s = server.stats();
    assert.deepEqual(Object.fromEntries(Object.entries(s.closed).filter(([, n]) => n > 0)), counted);
  } finally {
    await server.close();
  }
});
