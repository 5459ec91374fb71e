import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { labOptions } from '../../cli/lab.js';
import { swarmPorts } from '../../client/ports.js';
import { UsageError } from '../../core/errors.js';
import { BudgetError, HOLD_COSTS, planHold, type HoldMachine } from '../../lab/budget.js';
import { WSLAB } from '../../lab/processes.js';
import { parseMeminfo, parseSockstat, parseTcpExt, tcpMemState } from '../../lab/sockstat.js';

const GiB = 1024 ** 3;

/** This machine as MACHINE.md measured it, with `over` replacing what a case changes. */
const machine = (over: Partial<HoldMachine> = {}): HoldMachine => ({
  memTotalBytes: 23.4 * GiB, memAvailableBytes: 22.5 * GiB, tcpMem: [287_898, 383_866, 575_796], conntrackCount: 0, conntrackMax: 262_144,
  filesOpen: 2000, fileMax: 2_466_174, fdLimit: 20_000, pageSize: 4096, fileMaxEnforced: false,
  swarmPortsPerSource: swarmPorts([32768, 60999]).perSource, ...over,
});

describe('lab/budget: the plan of --scale max', () => {
  it('plans 1,000,000 connections within every process\'s 20,000 open files and the source ports', () => {
    const p = planHold(1_000_000, machine());
    assert.equal(p.swarmWorkers, 53); // ceil(1M / 19,000): 1,000 fds kept per process
    assert.equal(p.serverWorkers, 55); // ceil(1M / (19,000 × 0.97)): room for SO_REUSEPORT's uneven spread
    assert.ok(1_000_000 / p.serverWorkers <= 19_000 * 0.97);
    assert.equal(p.sources % p.swarmWorkers, 0, 'every swarm worker gets the same number of its own addresses');
    assert.equal(p.sourceIps, `127.0.0.2-127.0.0.${1 + p.sources}`);
    assert.ok(1_000_000 / p.sources <= 14_000, 'about half of the 27,208 ports the swarm binds per address');
    assert.ok(p.need.kernel === 1_000_000 * HOLD_COSTS.kernelBytesPerPair);
    assert.ok(p.need.total < 16 * GiB && p.boxUsedBytes < 20 * GiB, `${p.need.total / GiB} GiB`);
    assert.deepEqual(p.limits.map((l) => l.allows), [...p.limits.map((l) => l.allows)].sort((a, b) => a - b), 'lowest limit first');
    assert.ok(p.limits[0].allows >= 1_000_000);
    assert.match(p.limits.find((l) => l.name === 'nf_conntrack')!.note, /not tracking loopback/);
  });

  it('refuses in one line, saying what is needed, what is available and what to lower', () => {
    assert.throws(() => planHold(1_000_000, machine({ memAvailableBytes: 8 * GiB })), (err: Error) => {
      assert.ok(err instanceof BudgetError);
      assert.doesNotMatch(err.message, /\n/);
      assert.match(err.message, /^1,000,000 connections need ≈1\d\.\d GiB \(kernel 8\.6 GiB, .*\) but 7\.0 GiB is available .*: lower --connections to [\d,]+ or free memory$/);
      const fits = Number(/lower --connections to ([\d,]+)/.exec(err.message)![1].replace(/,/g, ''));
      assert.ok(fits > 250_000 && fits < 1_000_000, String(fits)); // here the 20 GiB cap binds first (15.4 GiB already used)
      assert.doesNotThrow(() => planHold(fits, machine({ memAvailableBytes: 8 * GiB })), 'the count it suggests fits');
      return true;
    });
  });

  it('refuses what would take the whole box over 20 GiB, and a conntrack table that tracks loopback', () => {
    assert.throws(() => planHold(1_000_000, machine({ memTotalBytes: 64 * GiB, memAvailableBytes: 40 * GiB })), /over the 20\.0 GiB cap/);
    assert.throws(() => planHold(1_000_000, machine({ conntrackCount: 5 })), /exceed nf_conntrack .*: lower --connections to 262,139$/);
    assert.throws(() => planHold(1_000_000, machine({ fileMaxEnforced: true, fileMax: 1_000_000 })), /exceed fs\.file-max/);
    assert.throws(() => planHold(3_000_000, machine({ memAvailableBytes: 200 * GiB, memTotalBytes: 201 * GiB })), /cap|source addresses/);
  });
});

describe('wslab lab --scale max at the CLI edge', () => {
  it('budgets with the machine given and refuses as a usage error', () => {
    const o = labOptions({ scenarios: 'idle-hold', scale: 'max' }, () => machine());
    assert.equal(o.max?.plan.connections, 1_000_000);
    assert.equal(o.max?.holdMs, 60_000);
    assert.throws(() => labOptions({ scenarios: 'idle-hold', scale: 'max' }, () => machine({ memAvailableBytes: 4 * GiB })),
      (err: Error) => err instanceof UsageError && /^--scale max: 1,000,000 connections need/.test(err.message));
    assert.throws(() => labOptions({ scale: 'max' }, () => machine()), /--scale max runs idle-hold only/);
    assert.throws(() => labOptions({ scenarios: 'idle-hold', connections: '5000' }, () => machine()), /apply to --scale max only/);
  });

  it('the built binary refuses 10,000,000 on this box in one line, exit 1, before starting anything', () => {
    const r = spawnSync(process.execPath, [WSLAB, 'lab', '--scenarios', 'idle-hold', '--scale', 'max', '--connections', '10000000'], { encoding: 'utf8', timeout: 15_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr.trim(), /^wslab[^\n]*--scale max: 10,000,000 connections (need|would bring|exceed)[^\n]*lower --connections to [\d,]+/);
  });
});

describe('lab/sockstat', () => {
  it('reads the TCP line of /proc/net/sockstat, /proc/meminfo and the tcp_mem state', () => {
    assert.deepEqual(parseSockstat('sockets: used 244\nTCP: inuse 205 orphan 1 tw 415 alloc 206 mem 160\nUDP: inuse 0 mem 0\n'),
      { inuse: 205, orphan: 1, tw: 415, alloc: 206, mem: 160 });
    assert.deepEqual(parseMeminfo('MemTotal:       24554904 kB\nMemAvailable:   23012345 kB\nHugePages_Total:       0\n'),
      { MemTotal: 24554904 * 1024, MemAvailable: 23012345 * 1024, HugePages_Total: 0 });
    assert.deepEqual(parseTcpExt("TcpExt: SyncookiesSent TCPMemoryPressures TCPAbortOnMemory\nTcpExt: 3 6 0\n"), { SyncookiesSent: 3, TCPMemoryPressures: 6, TCPAbortOnMemory: 0 });
    assert.equal(tcpMemState({ tcpMemPages: 100, tcpMem: [10, 200, 300] }), 'ok');
    assert.equal(tcpMemState({ tcpMemPages: 250, tcpMem: [10, 200, 300] }), 'pressure');
    assert.equal(tcpMemState({ tcpMemPages: 300, tcpMem: [10, 200, 300] }), 'exhausted');
  });
});
