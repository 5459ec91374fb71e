/**
 * wslab on Kubernetes, as typed objects (kubernetes-models: the Kubernetes OpenAPI types, each with a JSON-schema
 * `validate()`): a uws cluster server, the swarm as an Indexed Job of N shards, Prometheus scraping both, and the
 * Grafana dashboards. deploy/kubernetes/generate.ts writes them as the YAML files beside this one; a test checks the
 * committed YAML equals this output and validates every object (test/deploy/kubernetes.test.ts).
 *
 * Change the run in {@link K8S_DEFAULTS}, regenerate (`npm run k8s`), commit the YAML.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PodMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { ConfigMap, Namespace, Service, type IContainer, type IPodSecurityContext } from 'kubernetes-models/v1';
import { parse } from 'yaml';

/** The run the committed manifests describe. */
export interface K8sParams {
  /** Namespace of everything. Default `wslab`. */
  readonly namespace: string;
  /** Built from deploy/docker/Dockerfile and pushed where the cluster pulls from. Default `wslab:local`. */
  readonly image: string;
  /** CPUs of the server pod: the cluster design runs one uws loop (worker process) per CPU. Default 4. */
  readonly serverCpus: number;
  /** Memory of the server pod. Default 8Gi (≈1 KB userland per connection, MACHINE.md, plus ≈50 MB per worker). */
  readonly serverMemory: string;
  /** Swarm pods (Indexed Job completions = parallelism). Default 4. */
  readonly shards: number;
  /** Connections of the whole run, split over the shards by `--shards`. Default 200,000 (50,000 per pod). */
  readonly connections: number;
  /** New connections per second of the whole run. Default 4,000 (1,000 per pod). */
  readonly rate: number;
  /** How long every shard holds once its ramp settled. Default 5m. */
  readonly hold: string;
  /** CPUs and memory of one swarm pod. Defaults 2 and 2Gi (≈1 KB per connection, MACHINE.md). */
  readonly swarmCpus: number;
  readonly swarmMemory: string;
}

export const K8S_DEFAULTS: K8sParams = Object.freeze({
  namespace: 'wslab',
  image: 'wslab:local',
  serverCpus: 4,
  serverMemory: '8Gi',
  shards: 4,
  connections: 200_000,
  rate: 4000,
  hold: '5m',
  swarmCpus: 2,
  swarmMemory: '2Gi',
});

export const PORTS = Object.freeze({ ws: 8080, serverMetrics: 9464, swarmMetrics: 9465 });
const PART_OF = { 'app.kubernetes.io/part-of': 'wslab' };
const SERVER_LABELS = { ...PART_OF, 'app.kubernetes.io/name': 'wslab-server' };
const SWARM_LABELS = { ...PART_OF, 'app.kubernetes.io/name': 'wslab-swarm' };
const WSLAB = '/home/node/wslab/dist/cli/wslab.js'; // the image's ENTRYPOINT (deploy/docker/Dockerfile)

/** For Prometheus configured with the common `prometheus.io/*` pod-annotation relabelling (no operator needed). */
const scrapeAnnotations = (port: number) => ({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' });

/** The node user of the node:20 image; nothing needs root or a capability. */
const POD_SECURITY: IPodSecurityContext = { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } };
const CONTAINER_SECURITY: IContainer['securityContext'] = {
  allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] },
};
const resources = (cpu: number, memory: string): IContainer['resources'] => ({
  // requests = limits: Guaranteed QoS, so the loops get whole CPUs and the pod is the last to be evicted
  requests: { cpu: String(cpu), memory }, limits: { cpu: String(cpu), memory },
});

/** The server: one StatefulSet pod behind a headless Service, so every swarm pod connects to the pod IP directly. */
function server(p: K8sParams) {
  const service = new Service({
    metadata: { name: 'wslab-server', namespace: p.namespace, labels: SERVER_LABELS },
    spec: {
      // headless: no kube-proxy NAT, no conntrack entry per connection on the way (nf_conntrack_max, MACHINE.md)
      clusterIP: 'None',
      selector: SERVER_LABELS,
      ports: [{ name: 'ws', port: PORTS.ws, targetPort: 'ws' }, { name: 'metrics', port: PORTS.serverMetrics, targetPort: 'metrics' }],
    },
  });
  const statefulSet = new StatefulSet({
    metadata: { name: 'wslab-server', namespace: p.namespace, labels: SERVER_LABELS },
    spec: {
      serviceName: 'wslab-server',
      replicas: 1,
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: SERVER_LABELS },
      template: {
        metadata: { labels: SERVER_LABELS, annotations: scrapeAnnotations(PORTS.serverMetrics) },
        spec: {
          securityContext: POD_SECURITY,
          // the close phase of a held million takes seconds; SIGTERM closes the listeners, then the connections
          terminationGracePeriodSeconds: 60,
          containers: [{
            name: 'server',
            image: p.image,
            imagePullPolicy: 'IfNotPresent',
            // one uws loop per CPU of the pod: --workers is explicit because Node counts the node's CPUs, not the quota
            args: ['serve', '--design', 'cluster', '--inner', 'uws', '--workers', String(p.serverCpus),
              '--host', '0.0.0.0', '--port', String(PORTS.ws), '--metrics-host', '0.0.0.0', '--metrics-port', String(PORTS.serverMetrics)],
            ports: [{ name: 'ws', containerPort: PORTS.ws }, { name: 'metrics', containerPort: PORTS.serverMetrics }],
            readinessProbe: { httpGet: { path: '/metrics', port: 'metrics' }, periodSeconds: 5, timeoutSeconds: 3 },
            resources: resources(p.serverCpus, p.serverMemory),
            securityContext: CONTAINER_SECURITY,
          }],
        },
      },
    },
  });
  return [service, statefulSet];
}

/** The swarm URL: the first server pod by its stable name under the headless Service. */
export const serverUrl = (p: K8sParams): string => `ws://wslab-server-0.wslab-server.${p.namespace}.svc.cluster.local:${PORTS.ws}/`;

/** `wslab swarm` of one shard: its index comes from JOB_COMPLETION_INDEX, which the Job sets in each pod. */
export const swarmArgs = (p: K8sParams): string[] => [
  'swarm', '--url', serverUrl(p),
  // the target is this deployment's own server pod, inside the cluster network
  '--allow-remote-target',
  '--connections', String(p.connections), '--shards', String(p.shards), '--rate', String(p.rate), '--hold', p.hold,
  '--metrics-host', '0.0.0.0', '--metrics-port', String(PORTS.swarmMetrics), '--summary', '/tmp/summary.json',
];

/*
 * The summary leaves the pod as its last log line (one line of JSON) after the swarm's own output, because a Job's
 * pod is gone before anything could copy a file out of it:
 *   kubectl logs -n wslab -l job-name=wslab-swarm --tail=1 | split -l 1 - shard-  &&  wslab swarm merge shard-*
 * The swarm's exit code stays the pod's.
 */
const SWARM_SCRIPT = `node ${WSLAB} "$@"; rc=$?; [ -f /tmp/summary.json ] && tr -d '\\n' < /tmp/summary.json && echo; exit $rc`;

/** Waits (at most 10 minutes) for the server's /metrics before a shard starts: a shard that meets a closed port fails. */
const WAIT_FOR_SERVER = (p: K8sParams): string =>
  `for i in $(seq 1 300); do node -e "fetch('http://wslab-server-0.wslab-server.${p.namespace}.svc.cluster.local:${PORTS.serverMetrics}/metrics').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))" && exit 0; sleep 2; done; echo 'wslab-server not ready after 10 minutes' >&2; exit 1`;

/** The swarm: an Indexed Job, all N pods at once, each `wslab swarm --shards N` = shard JOB_COMPLETION_INDEX of N. */
function swarm(p: K8sParams) {
  return [new Job({
    metadata: { name: 'wslab-swarm', namespace: p.namespace, labels: SWARM_LABELS },
    spec: {
      completionMode: 'Indexed',
      completions: p.shards,
      parallelism: p.shards,
      // a shard retried later would open its slice again after the others' hold: a failed shard is reported, not redone
      backoffLimit: 0,
      ttlSecondsAfterFinished: 86_400,
      template: {
        metadata: { labels: SWARM_LABELS, annotations: scrapeAnnotations(PORTS.swarmMetrics) },
        spec: {
          restartPolicy: 'Never',
          securityContext: {
            ...POD_SECURITY,
            // a "safe" sysctl (allowed by every kubelet): 64,512 ephemeral ports per (pod IP, server IP:port) instead of
            // 28,232, so one pod can hold 50,000 connections to one server port
            sysctls: [{ name: 'net.ipv4.ip_local_port_range', value: '1024 65535' }],
          },
          initContainers: [{
            name: 'wait-for-server', image: p.image, imagePullPolicy: 'IfNotPresent',
            command: ['sh', '-c', WAIT_FOR_SERVER(p)],
            securityContext: CONTAINER_SECURITY,
          }],
          containers: [{
            name: 'swarm',
            image: p.image,
            imagePullPolicy: 'IfNotPresent',
            command: ['sh', '-c', SWARM_SCRIPT, 'wslab'],
            args: swarmArgs(p),
            ports: [{ name: 'metrics', containerPort: PORTS.swarmMetrics }],
            resources: resources(p.swarmCpus, p.swarmMemory),
            securityContext: CONTAINER_SECURITY,
            volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
          }],
          volumes: [{ name: 'tmp', emptyDir: {} }],
        },
      },
    },
  })];
}

/** For the Prometheus Operator: both scraped every 5 s (grafana/prometheus/prometheus.yml), and the shipped rules. */
function operator(p: K8sParams, root: string) {
  const podMonitor = (name: string, labels: Record<string, string>) => new PodMonitor({
    metadata: { name, namespace: p.namespace, labels: PART_OF },
    spec: { selector: { matchLabels: labels }, podMetricsEndpoints: [{ port: 'metrics', path: '/metrics', interval: '5s' }] },
  });
  const groups = ['recording.yml', 'alerts.yml']
    .flatMap((f) => (parse(readFileSync(join(root, 'grafana', 'prometheus', 'rules', f), 'utf8')) as { groups: unknown[] }).groups);
  const rule = new PrometheusRule({
    metadata: { name: 'wslab', namespace: p.namespace, labels: PART_OF },
    // the dashboards read the recorded series (instance_design:…, instance:wslab_swarm_…): the rules go with them
    spec: { groups: groups as PrometheusRule['spec']['groups'] },
  });
  return [podMonitor('wslab-server', SERVER_LABELS), podMonitor('wslab-swarm', SWARM_LABELS), rule];
}

/** grafana/dashboards/*.json, byte for byte, labelled for the Grafana sidecar of the common Grafana Helm charts. */
function dashboards(p: K8sParams, root: string) {
  const dir = join(root, 'grafana', 'dashboards');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  return [new ConfigMap({
    metadata: { name: 'wslab-grafana-dashboards', namespace: p.namespace, labels: { ...PART_OF, grafana_dashboard: '1' }, annotations: { grafana_folder: 'wslab' } },
    data: Object.fromEntries(files.map((f) => [f, readFileSync(join(dir, f), 'utf8')])),
  })];
}

/** The file of the PodMonitors and the PrometheusRule: only for clusters with the Prometheus Operator's CRDs. */
export const OPERATOR_FILE = 'prometheus-operator.yaml';

/** Every manifest file: name → its objects, in apply order. `root` is the repository (for grafana/). */
export function manifests(root: string, p: K8sParams = K8S_DEFAULTS) {
  return {
    'namespace.yaml': [new Namespace({ metadata: { name: p.namespace, labels: PART_OF } })],
    'server.yaml': server(p),
    'swarm-job.yaml': swarm(p),
    'grafana-dashboards.yaml': dashboards(p, root),
    [OPERATOR_FILE]: operator(p, root),
  };
}
