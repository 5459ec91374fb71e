/**
 * deploy/kubernetes/: the committed YAML is exactly what generate.ts writes, and every object in it — parsed back
 * from the committed text — passes its JSON schema (kubernetes-models: the Kubernetes OpenAPI schemas; the Prometheus
 * Operator's CRD schemas for PodMonitor and PrometheusRule). No cluster here (no kubectl, no kubeconform), so what a
 * schema cannot see is checked by hand: selectors match labels, named ports exist, the server and swarm command lines
 * pass wslab's own option checks, the N shards sum to the run, the dashboards and rules are the shipped files, and
 * the swarm pod's shell wrapper really runs a shard and ends its log with the summary.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PodMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { ConfigMap, Namespace, Service, type IContainer, type IPodTemplateSpec } from 'kubernetes-models/v1';
import { parse, parseAllDocuments } from 'yaml';
import yargs from 'yargs';
import { serveOptions } from '../../cli/serve.js';
import { swarmCommand, swarmOptions } from '../../cli/swarm.js';
import type { Summary } from '../../client/recorder.js';
import { OUT_DIR, ROOT, render } from '../../deploy/kubernetes/generate.js';
import { K8S_DEFAULTS as P, OPERATOR_FILE } from '../../deploy/kubernetes/manifests.js';
import { spawnServer } from '../../lab/processes.js';

const MODELS = { Namespace, Service, StatefulSet, Job, ConfigMap, PodMonitor, PrometheusRule } as const;
type Kind = keyof typeof MODELS;
interface Obj { apiVersion: string; kind: Kind; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: unknown }

const committed = Object.fromEntries(readdirSync(OUT_DIR).filter((f) => f.endsWith('.yaml')).map((f) => [f, readFileSync(join(OUT_DIR, f), 'utf8')]));
const objects: Obj[] = Object.entries(committed).filter(([f]) => f !== 'kustomization.yaml').flatMap(([file, text]) => parseAllDocuments(text).map((d) => {
  assert.deepEqual(d.errors, [], file);
  return d.toJSON() as Obj;
}));
const one = <K extends Kind>(kind: K, name: string) => {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  assert.equal(found.length, 1, `${kind}/${name}`);
  return found[0] as unknown as InstanceType<(typeof MODELS)[K]>;
};
const sts = one('StatefulSet', 'wslab-server');
const job = one('Job', 'wslab-swarm');
const svc = one('Service', 'wslab-server');
const serverPod = sts.spec!.template;
const swarmPod = job.spec!.template;
const container = (pod: IPodTemplateSpec): IContainer => pod.spec!.containers[0];
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** `--flag value` / `--flag` (boolean) → the raw object the CLI's option checks take. */
function raw(args: string[]): Record<string, unknown> {
  const a: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const flag = args[i].replace(/^--/, '');
    if (i + 1 >= args.length || args[i + 1].startsWith('--')) a[flag] = true;
    else a[flag] = flag === 'url' ? [args[++i]] : args[++i];
  }
  return a;
}

describe('deploy/kubernetes', () => {
  it('the committed YAML is exactly the output of generate.ts (run npm run k8s after changing manifests.ts)', () => {
    const fresh = render();
    assert.deepEqual(Object.keys(committed).sort(), Object.keys(fresh).sort());
    for (const [file, text] of Object.entries(fresh)) assert.equal(committed[file], text, `${file} is stale: run npm run k8s`);
  });

  it('every committed object passes its schema; a broken one does not', () => {
    assert.ok(objects.length >= 8);
    for (const o of objects) {
      const Model = MODELS[o.kind] as unknown as new (data: unknown) => { validate(): void };
      assert.ok(Model, `no schema for kind ${o.kind}`);
      assert.doesNotThrow(() => new Model(o).validate(), `${o.kind}/${o.metadata.name}`);
      assert.equal(o.metadata.namespace ?? (o.kind === 'Namespace' ? undefined : 'missing'), o.kind === 'Namespace' ? undefined : P.namespace);
    }
    const broken = structuredClone(job) as unknown as { spec: { parallelism: unknown } };
    broken.spec.parallelism = 'four';
    assert.throws(() => new Job(broken as never).validate(), /parallelism must be integer/);
    const kustomization = parse(committed['kustomization.yaml']) as { resources: string[] };
    assert.deepEqual(kustomization.resources.sort(), Object.keys(committed).filter((f) => f !== 'kustomization.yaml' && f !== OPERATOR_FILE).sort());
  });

  it('selectors select, named ports exist, scrape annotations name the metrics port', () => {
    assert.ok(matches(sts.spec!.selector.matchLabels!, serverPod.metadata!.labels));
    assert.ok(matches(svc.spec!.selector!, serverPod.metadata!.labels));
    assert.equal(svc.spec!.clusterIP, 'None');
    assert.equal(sts.spec!.serviceName, svc.metadata!.name);
    const ports = (pod: IPodTemplateSpec) => new Map(container(pod).ports!.map((p) => [p.name, p.containerPort]));
    for (const p of svc.spec!.ports!) assert.equal(ports(serverPod).get(String(p.targetPort)), p.port, `Service port ${p.name}`);
    assert.ok(ports(serverPod).has(String(container(serverPod).readinessProbe!.httpGet!.port)));
    for (const pod of [serverPod, swarmPod]) {
      const a = pod.metadata!.annotations!;
      assert.equal(a['prometheus.io/scrape'], 'true');
      assert.equal(Number(a['prometheus.io/port']), ports(pod).get('metrics'));
    }
    for (const name of ['wslab-server', 'wslab-swarm']) {
      const pm = one('PodMonitor', name);
      const pod = name === 'wslab-server' ? serverPod : swarmPod;
      assert.ok(matches(pm.spec.selector.matchLabels!, pod.metadata!.labels), `PodMonitor ${name} selects its pods`);
      assert.ok(pm.spec.podMetricsEndpoints!.every((e) => ports(pod).has(e.port!)), `PodMonitor ${name} port`);
    }
  });

  it('the server runs the cluster design, one uws loop per CPU of the pod, and its flags pass `wslab serve`\'s checks', () => {
    const c = container(serverPod);
    const o = serveOptions(raw(c.args!.slice(1)));
    assert.equal(c.args![0], 'serve');
    assert.equal(o.design, 'cluster');
    assert.equal(o.own.inner, 'uws');
    assert.equal(String(o.own.workers), c.resources!.limits!.cpu);
    assert.equal(c.resources!.limits!.cpu, c.resources!.requests!.cpu, 'Guaranteed QoS: whole CPUs');
  });

  it('the swarm is an Indexed Job of N pods, each `wslab swarm --shards N`, and the N slices sum to the run', async () => {
    const spec = job.spec!;
    assert.equal(spec.completionMode, 'Indexed');
    assert.equal(spec.parallelism, P.shards);
    assert.equal(spec.completions, P.shards);
    const args = container(swarmPod).args!;
    assert.equal(args[0], 'swarm');
    const a = raw(args.slice(1));
    assert.equal(Number(a.shards), spec.completions);
    const known = Object.keys((swarmCommand.builder(yargs([])) as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key);
    for (const flag of Object.keys(a)) assert.ok(known.includes(flag), `wslab swarm has no --${flag}`);
    const url = new URL((a.url as string[])[0]);
    assert.equal(url.hostname, `${sts.metadata!.name}-0.${svc.metadata!.name}.${P.namespace}.svc.cluster.local`, 'the URL names the server pod under its headless Service');
    assert.equal(Number(url.port), svc.spec!.ports!.find((p) => p.name === 'ws')!.port);
    // No cluster DNS here: the same flags with the host as an address, once per JOB_COMPLETION_INDEX.
    const saved = process.env.JOB_COMPLETION_INDEX;
    let sum = 0;
    try {
      for (let i = 0; i < P.shards; i++) {
        process.env.JOB_COMPLETION_INDEX = String(i);
        const o = await swarmOptions({ ...a, url: [`ws://198.18.0.1:${url.port}/`] });
        assert.deepEqual({ index: o.shard!.index, of: o.shard!.of }, { index: i, of: P.shards });
        sum += o.connections;
      }
    } finally {
      if (saved === undefined) delete process.env.JOB_COMPLETION_INDEX; else process.env.JOB_COMPLETION_INDEX = saved;
    }
    assert.equal(sum, Number(a.connections));
    assert.ok(swarmPod.spec!.securityContext!.sysctls!.some((s) => s.name === 'net.ipv4.ip_local_port_range'));
  });

  it('the dashboards ConfigMap holds grafana/dashboards/*.json byte for byte; the PrometheusRule holds the shipped rules', () => {
    const cm = one('ConfigMap', 'wslab-grafana-dashboards');
    const dir = join(ROOT, 'grafana', 'dashboards');
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    assert.deepEqual(Object.keys(cm.data!).sort(), files.sort());
    for (const f of files) assert.equal(cm.data![f], readFileSync(join(dir, f), 'utf8'), f);
    assert.equal(cm.metadata!.labels!.grafana_dashboard, '1');
    const rules = ['recording.yml', 'alerts.yml'].flatMap((f) => (parse(readFileSync(join(ROOT, 'grafana', 'prometheus', 'rules', f), 'utf8')) as { groups: unknown[] }).groups);
    assert.deepEqual(one('PrometheusRule', 'wslab').spec.groups, rules);
  });

  describe("the swarm pod's command, run here", () => {
    const dir = mkdtempSync(join(tmpdir(), 'wslab-k8s-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('runs shard JOB_COMPLETION_INDEX of N and ends its output with the summary on one line', { timeout: 30_000 }, async () => {
      const server = await spawnServer('uws');
      try {
        const c = container(swarmPod);
        const summary = join(dir, 'summary.json');
        // The image's paths and the cluster's names swapped for this checkout's and a loopback server; 40 connections.
        const wslab = join(ROOT, 'dist', 'cli', 'wslab.js');
        const command = c.command!.map((s) => s.replaceAll('/home/node/wslab/dist/cli/wslab.js', wslab).replaceAll('/tmp/summary.json', summary));
        const a = raw(c.args!.slice(1));
        const args = c.args!.map((s, i, all) => {
          const flag = all[i - 1];
          return flag === '--url' ? server.url : flag === '--connections' ? '40' : flag === '--hold' ? '0' : flag === '--metrics-host' ? '127.0.0.1'
            : flag === '--metrics-port' ? '0' : flag === '--summary' ? summary : s;
        });
        const child = spawn(command[0], [...command.slice(1), ...args], { env: { ...process.env, JOB_COMPLETION_INDEX: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
        child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
        const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
        assert.equal(code, 0, err);
        const last = JSON.parse(out.trimEnd().split('\n').at(-1)!) as Summary;
        assert.deepEqual(last.shard, { index: 1, of: Number(a.shards), totalTarget: 40 });
        assert.equal(last.opened, 40 / Number(a.shards));
        assert.deepEqual(last, JSON.parse(readFileSync(summary, 'utf8')));
      } finally {
        await server.stop();
      }
    });
  });
});
