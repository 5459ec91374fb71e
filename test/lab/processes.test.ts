import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { processTree } from '../../metrics/proc-status.js';
import { spawnServer } from '../../lab/processes.js';

/** The nice value of every thread of a process tree (field 19 of /proc/<pid>/task/<tid>/stat). */
function niceness(pid: number): number[] {
  return processTree(pid).flatMap((p) => readdirSync(`/proc/${p}/task`).map((t) => {
    const stat = readFileSync(`/proc/${p}/task/${t}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  }));
}

// The lab starts the next cell's server at nice 19 while a cell runs, and sets it back before its own cell.
describe('a server started ahead at low priority', () => {
  const root = process.getuid?.() === 0;
  for (const design of ['threads', 'cluster']) {
    it(`${design}: every thread starts at nice 19 and renice(0) restores every one`, { skip: !root && 'raising priority needs root' }, async () => {
      const srv = await spawnServer(design, design === 'cluster' ? ['--workers', '2', '--inner', 'ws'] : ['--pool', '4'], 15_000, 19);
      try {
        const before = niceness(srv.pid);
        assert.ok(before.length > (design === 'cluster' ? 3 : 4), `${before.length} threads`);
        assert.deepEqual([...new Set(before)], [19]);
        srv.renice(0);
        assert.deepEqual([...new Set(niceness(srv.pid))], [0]);
      } finally {
        assert.equal(await srv.stop(), 0);
      }
    });
  }
});
