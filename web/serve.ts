/**
 * `wslab serve --web`: the server's own process tree and /metrics, sampled every second by the lab's Sampler (the
 * series the lab's report charts: open connections, RSS, CPU, threads, loop delay, files, switches) into one
 * section of the live page. Loaded only when `--web` is given.
 */
import { Sampler } from '../lab/sampler.js';
import type { Running } from '../server/serve.js';
import { LiveWeb } from './live.js';
import type { WebOptions } from './options.js';
import { SAMPLED_CHARTS, samplePoint } from './publish.js';

const INTERVAL_MS = 1000;
/** An hour of samples kept by the sampler; the page's own history thins past LiveWeb's cap. */
const RETAIN = 3600;

export const openServeWeb = (o: WebOptions, design: string): Promise<LiveWeb> => LiveWeb.open(o, `wslab serve --design ${design}`);

/** Starts sampling `running` into `web`; `stop(why)` ends the page with `why`. */
export function sampleServe(web: LiveWeb, running: Running, design: string): { stop(why: string): Promise<void> } {
  web.publish({ type: 'hello', kind: 'serve', title: `wslab serve --design ${design} on ${running.url}`, startedAt: new Date().toISOString(), pid: process.pid });
  web.publish({ type: 'section', id: 'server', title: `${design} on ${running.url}`, xTitle: 'seconds since the server started', charts: [...SAMPLED_CHARTS] });
  const sampler = new Sampler(process.pid, running.metricsUrl, INTERVAL_MS);
  sampler.retain = RETAIN;
  sampler.onSample = (t, row) => web.publish(samplePoint('server', design, t, row), 'server');
  sampler.start();
  return {
    async stop(why) {
      sampler.onSample = undefined;
      await sampler.stop();
      await web.close({ type: 'end', status: why, lines: [], files: [] });
    },
  };
}
