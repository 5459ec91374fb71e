/**
 * `npm run bench [-- <bench> [options]]`: runs one benchmark of bench/ (built into dist/bench/) with its options, or,
 * with no name, lists them. Each bench prints its JSON on stdout; they sit outside `npm test` on purpose (minutes,
 * thousands of sockets, and bench/peers needs Artillery and Tsung installed outside the project).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BENCHES: Record<string, string> = {
  'idle-memory': 'server RSS per idle connection for each design, open time, /metrics render time',
  'swarm-vs-ws-client': 'wslab swarm vs a `ws` client vs a raw net.Socket client holding N idle connections',
  fuzz: '≥1M fuzzed frames against one design: replies, close codes, RSS, /metrics',
  peers: 'wslab swarm vs Artillery 2 vs Tsung holding 5,000 and 15,000 idle connections for 30 s against one uws server',
};

const [name, ...args] = process.argv.slice(2);
if (!name || !(name in BENCHES)) {
  if (name) process.stderr.write(`bench: unknown bench "${name}"\n`);
  process.stderr.write(`usage: npm run bench -- <bench> [options]\n${Object.entries(BENCHES).map(([b, what]) => `  ${b.padEnd(20)} ${what}`).join('\n')}\n`);
  process.exit(name ? 1 : 0);
}
const child = spawn(process.execPath, [fileURLToPath(new URL(`./${name}.js`, import.meta.url)), ...args], { stdio: 'inherit' });
// the bench owns its children and kills them on SIGINT/SIGTERM; pass the signal on and exit with its code
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
