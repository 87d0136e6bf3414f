// The Kubernetes objects of one run over many hosts: a ConfigMap with the workload, a ReadWriteMany
// claim for the parts, an Indexed Job of N workers (one share each) and a Job that waits for their N
// parts, merges them and prints the result file. Plain data in, objects and commented YAML out.
//
// LIMITATION: a worker that died before it began its journal leaves nothing to merge; the merge waits
// for it until the deadline and the Job then fails (a Job cannot wait for another Job, and no kubectl
// runs inside). One that died later is merged from its journal once that has been quiet for 30 s.

import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IPodSecurityContext } from 'kubernetes-models/v1/PodSecurityContext';
import type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext';
import { Document, isMap, isScalar, isSeq, type Node } from 'yaml';
import { formatCount } from '../../src/format.ts';

/** Everything one run's manifests depend on, checked already (generate.ts reads it from flags). */
export interface RunPlan {
  /** Names the objects, the parts folder and the result file: lowercase letters, digits and `-`. */
  readonly runId: string;
  /** Worker pods, each running one share (`--shards`); Kubernetes hands each its index. */
  readonly workers: number;
  /** The `QUEUE` value every worker gets (an adapter's canonical name). */
  readonly queue: string;
  /** `--mode` for the workers; absent: the adapter's default, named in `modeLabel`. */
  readonly mode?: string;
  readonly modeLabel: string;
  /** The run's messages, the workers' positional argument; absent: the workload's or the default. */
  readonly messages?: number;
  /** The workload file as the ConfigMap holds it: its key (file name) and whole text. */
  readonly workload: { readonly key: string; readonly content: string; readonly name: string };
  /** The worker image, as the cluster's nodes pull it. */
  readonly image: string;
  /** The Secret holding the broker's variables; never a value of it. */
  readonly secretName: string;
  /** The variable naming the broker's server (REDIS_URL, SQS_ENDPOINT, ...): required in the Secret. */
  readonly serverVariable: string;
  /** Variables the broker reads as secrets, for the header's list of what the Secret may hold. */
  readonly secretVariables: readonly string[];
  /** ISO 8601 instant at which every worker starts publishing; absent: each starts when it is up. */
  readonly startAt?: string;
  /** A ReadWriteMany storage class; absent: the cluster's default class. */
  readonly storageClass?: string;
  /** Size of the parts volume, a Kubernetes quantity (`1Gi`). */
  readonly storageSize: string;
  /** A service account for the workers (cloud credentials through it); absent: none mounted. */
  readonly serviceAccount?: string;
  /** Each worker's CPU request (`1`, `500m`) and memory request and limit (`1Gi`). */
  readonly cpu: string;
  readonly memory: string;
  /** Longest either Job may run, pulling images and waiting included, in minutes. */
  readonly deadlineMinutes: number;
  /** The file the manifests are written to, for the kubectl lines of the header. */
  readonly fileName: string;
  /** The command that made them, for the header. */
  readonly commandLine: string;
}

/** Where the shared volume, the parts, the merged results and the workload are mounted in every pod. */
export const DATA_DIR = '/data';
export const PARTS_DIR = `${DATA_DIR}/parts`;
export const RESULTS_DIR = `${DATA_DIR}/results`;
export const WORKLOAD_DIR = '/etc/brokerbench';

/** The image's `node` user (node:20-slim), by number so `runAsNonRoot` can be checked. */
const USER_ID = 1000;

export type Manifest = IConfigMap | IPersistentVolumeClaim | IJob;

/** The names of a run's objects, so the README, the header and the tests name them alike. */
export function objectNames(runId: string): { workload: string; parts: string; workers: string; merge: string } {
  const base = `brokerbench-${runId}`;
  return { workload: `${base}-workload`, parts: `${base}-parts`, workers: `${base}-workers`, merge: `${base}-merge` };
}

/** The run's objects in the order they are applied. */
export function buildManifests(plan: RunPlan): Manifest[] {
  return [workloadConfigMap(plan), partsClaim(plan), workersJob(plan), mergeJob(plan)];
}

/** The manifests as one YAML stream, each object with comments saying why it is so. */
export function renderManifests(plan: RunPlan): string {
  const [configMap, claim, workers, merge] = buildManifests(plan);
  // No anchors and aliases for objects used twice: every manifest reads whole where it stands.
  const docs = [configMap, claim, workers, merge].map((manifest) => new Document(manifest, { aliasDuplicateObjects: false }));
  const [configDoc, claimDoc, workersDoc, mergeDoc] = docs as [Document, Document, Document, Document];
  configDoc.commentBefore = lines(header(plan));
  note(configDoc, ['data'], 'The workload every worker runs (README: Workload files); the flags in the workers\' args win over it.');
  note(claimDoc, ['spec', 'accessModes'], [
    'ReadWriteMany: every worker, on whichever node, writes its part here and the merge reads them all.',
    'The default class of most clusters is ReadWriteOnce only (EBS, Persistent Disk, Azure Disk) and leaves',
    'this claim Pending: give --storage-class a ReadWriteMany class, such as Amazon EFS (efs.csi.aws.com),',
    'GKE Filestore (filestore.csi.storage.gke.io), Azure Files (file.csi.azure.com) or an NFS provisioner.',
    `User ${USER_ID}, group ${USER_ID} must be able to write to it: fsGroup in the pods covers classes that honour`,
    `it; for NFS or EFS, make the export or access point belong to ${USER_ID}:${USER_ID}.`,
  ].join('\n'));
  note(workersDoc, ['spec', 'completionMode'], [
    'One pod per share, all at once. Kubernetes sets JOB_COMPLETION_INDEX in each, which the worker',
    'takes as its --shard.',
  ].join('\n'));
  note(workersDoc, ['spec', 'backoffLimitPerIndex'], [
    'A worker is never run twice: a second attempt would publish its share again into a run already',
    'under way, and the books would not balance. A failed index shows in status.failedIndexes.',
  ].join('\n'));
  const worker = ['spec', 'template', 'spec', 'containers', 0];
  note(workersDoc, [...worker, 'env'], [
    `${plan.serverVariable} comes from the Secret and is required: without it each worker would start a`,
    'broker of its own (or reach none), and the workers would not share one.',
  ].join('\n'));
  note(workersDoc, [...worker, 'envFrom'], 'Every other key of the Secret (passwords, keys, a region) as it is.');
  note(workersDoc, [...worker, 'resources'], [
    'A request, so a worker is not squeezed onto a busy node; no CPU limit: throttling would show as',
    'latency that is not the broker\'s.',
  ].join('\n'));
  note(workersDoc, ['spec', 'template', 'spec', 'topologySpreadConstraints'], 'Spreads the workers over the nodes (as far as they fit): a run over many hosts, not N pods on one.');
  note(mergeDoc, ['spec', 'template', 'spec', 'initContainers'], [
    `Starts with the workers and waits on the shared volume until all ${formatCount(plan.workers)} parts are there (no`,
    'kubectl runs inside a pod, and a Job cannot wait for another); then merges them into one result',
    `file under ${RESULTS_DIR}, which the "result" container prints: kubectl logs -c result collects it.`,
  ].join('\n'));
  note(mergeDoc, ['spec', 'backoffLimit'], 'One more try if the pod is lost with its node; a merge that refuses the parts would refuse them again.');
  note(mergeDoc, ['spec', 'activeDeadlineSeconds'], 'If a worker dies before its journal begins (no part, nothing to merge), the wait ends here and the Job fails.');
  return docs.map((doc) => doc.toString({ lineWidth: 0 })).join('---\n');
}

function header(plan: RunPlan): string {
  const names = objectNames(plan.runId);
  const messages = plan.messages === undefined ? 'the workload\'s messages' : `${formatCount(plan.messages)} messages`;
  const optional = plan.secretVariables.filter((name) => name !== plan.serverVariable);
  return [
    `brokerbench run ${plan.runId}: ${formatCount(plan.workers)} workers on ${plan.queue} (${plan.modeLabel}), ${messages}, workload ${plan.workload.name}.`,
    `Made by: ${plan.commandLine}`,
    '',
    'Before applying (README: Running on Kubernetes):',
    `  - the image ${plan.image}, where the cluster's nodes can pull it;`,
    `  - a Secret ${plan.secretName} in the namespace, holding ${plan.serverVariable} (required);`,
    ...(optional.length > 0 ? [`    also, as the broker needs, ${optional.join(', ')};`] : []),
    '    every key of it becomes a variable of the workers;',
    '  - a ReadWriteMany storage class (the claim below says why).',
    'Then:',
    `  kubectl apply -f ${plan.fileName}`,
    `  kubectl wait --for=condition=complete --timeout=${plan.deadlineMinutes}m job/${names.merge}`,
    `  kubectl logs job/${names.merge} -c result > ${plan.runId}.json`,
    `  kubectl delete -f ${plan.fileName}    # the Jobs, and the claim with the parts`,
  ].join('\n');
}

function labels(plan: RunPlan, component: 'worker' | 'merge' | 'storage' | 'workload'): Record<string, string> {
  return { 'app.kubernetes.io/name': 'brokerbench', 'app.kubernetes.io/instance': plan.runId, 'app.kubernetes.io/component': component };
}

function workloadConfigMap(plan: RunPlan): IConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: objectNames(plan.runId).workload, labels: labels(plan, 'workload') },
    data: { [plan.workload.key]: plan.workload.content },
  };
}

function partsClaim(plan: RunPlan): IPersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: objectNames(plan.runId).parts, labels: labels(plan, 'storage') },
    spec: {
      accessModes: ['ReadWriteMany'],
      ...(plan.storageClass !== undefined ? { storageClassName: plan.storageClass } : {}),
      resources: { requests: { storage: plan.storageSize } },
    },
  };
}

const POD_SECURITY: IPodSecurityContext = {
  runAsNonRoot: true,
  runAsUser: USER_ID,
  runAsGroup: USER_ID,
  fsGroup: USER_ID,
  seccompProfile: { type: 'RuntimeDefault' },
};

const CONTAINER_SECURITY: ISecurityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };

function workersJob(plan: RunPlan): IJob {
  const names = objectNames(plan.runId);
  const podLabels = labels(plan, 'worker');
  const args = [
    'worker',
    ...(plan.messages !== undefined ? [String(plan.messages)] : []),
    '--workload', `${WORKLOAD_DIR}/${plan.workload.key}`,
    ...(plan.mode !== undefined ? ['--mode', plan.mode] : []),
  ];
  const worker: IContainer = {
    name: 'worker',
    image: plan.image,
    imagePullPolicy: 'IfNotPresent',
    args,
    env: [
      { name: 'QUEUE', value: plan.queue },
      { name: 'BROKERBENCH_SHARDS', value: String(plan.workers) },
      { name: 'BROKERBENCH_RUN_ID', value: plan.runId },
      { name: 'BROKERBENCH_PARTS_DIR', value: PARTS_DIR },
      ...(plan.startAt !== undefined ? [{ name: 'BROKERBENCH_START_AT', value: plan.startAt }] : []),
      { name: plan.serverVariable, valueFrom: { secretKeyRef: { name: plan.secretName, key: plan.serverVariable } } },
    ],
    envFrom: [{ secretRef: { name: plan.secretName } }],
    resources: { requests: { cpu: plan.cpu, memory: plan.memory }, limits: { memory: plan.memory } },
    securityContext: CONTAINER_SECURITY,
    volumeMounts: [
      { name: 'parts', mountPath: DATA_DIR },
      { name: 'workload', mountPath: WORKLOAD_DIR, readOnly: true },
    ],
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: names.workers, labels: podLabels },
    spec: {
      completionMode: 'Indexed',
      completions: plan.workers,
      parallelism: plan.workers,
      backoffLimitPerIndex: 0,
      activeDeadlineSeconds: plan.deadlineMinutes * 60,
      template: {
        metadata: { labels: podLabels },
        spec: {
          restartPolicy: 'Never',
          ...(plan.serviceAccount !== undefined ? { serviceAccountName: plan.serviceAccount } : {}),
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: POD_SECURITY,
          topologySpreadConstraints: [
            { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: podLabels } },
          ],
          containers: [worker],
          volumes: [
            { name: 'parts', persistentVolumeClaim: { claimName: names.parts } },
            { name: 'workload', configMap: { name: names.workload } },
          ],
        },
      },
    },
  };
}

/**
 * Waits, checking every 5 s, until every worker is done: its part is on the shared volume, or it died
 * and left its journal, unwritten for 30 s (a live worker writes it every second), for the merge to read
 * as its books. Says so when the count changes; makes the results folder the merge writes to. POSIX sh
 * and coreutils' stat.
 */
const WAIT_FOR_PARTS = `mkdir -p "$RESULTS"
seen=-1
while :; do
  have=0; dead=0; i=0; now=$(date +%s)
  while [ "$i" -lt "$WORKERS" ]; do
    part="$PARTS/part-$i-of-$WORKERS"
    if [ -e "$part.json" ]; then have=$((have + 1))
    elif [ -e "$part.journal" ] && [ $((now - $(stat -c %Y "$part.journal"))) -ge 30 ]; then dead=$((dead + 1))
    fi
    i=$((i + 1))
  done
  if [ "$have" -ge "$WORKERS" ]; then echo "all $WORKERS parts are in $PARTS"; exit 0; fi
  if [ $((have + dead)) -ge "$WORKERS" ]; then echo "$have of $WORKERS parts are in $PARTS; $dead worker(s) died, their journals unwritten for 30 s: merging what they left"; exit 0; fi
  if [ "$have" -ne "$seen" ]; then echo "$have of $WORKERS parts in $PARTS; waiting"; seen=$have; fi
  sleep 5
done
`;

function mergeJob(plan: RunPlan): IJob {
  const names = objectNames(plan.runId);
  const podLabels = labels(plan, 'merge');
  const parts = `${PARTS_DIR}/${plan.runId}`;
  const result = `${RESULTS_DIR}/${plan.runId}.json`;
  const mounts = [{ name: 'parts', mountPath: DATA_DIR }];
  const common = { image: plan.image, imagePullPolicy: 'IfNotPresent', securityContext: CONTAINER_SECURITY, volumeMounts: mounts } as const;
  const small = { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: names.merge, labels: podLabels },
    spec: {
      backoffLimit: 1,
      activeDeadlineSeconds: plan.deadlineMinutes * 60,
      template: {
        metadata: { labels: podLabels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: POD_SECURITY,
          initContainers: [
            {
              name: 'wait-for-parts',
              ...common,
              command: ['sh', '-c', WAIT_FOR_PARTS],
              env: [
                { name: 'PARTS', value: parts },
                { name: 'WORKERS', value: String(plan.workers) },
                { name: 'RESULTS', value: RESULTS_DIR },
              ],
              resources: small,
            },
            {
              name: 'merge',
              ...common,
              args: ['merge', parts, '--out', result],
              resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '1Gi' } },
            },
          ],
          containers: [{ name: 'result', ...common, command: ['cat', result], resources: small }],
          volumes: [{ name: 'parts', persistentVolumeClaim: { claimName: names.parts } }],
        },
      },
    },
  };
}

/** Puts `text` as a comment above the key at `path` (keys and list indexes from the document's root). */
function note(doc: Document, path: readonly (string | number)[], text: string): void {
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  const key = path.at(-1);
  let target: Node | undefined;
  if (isMap(parent)) {
    const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === key);
    target = pair && isScalar(pair.key) ? pair.key : undefined;
  } else if (isSeq(parent) && typeof key === 'number') {
    target = parent.items[key] as Node | undefined;
  }
  if (!target) throw new Error(`no ${path.join('.')} in the manifest to comment on`);
  target.commentBefore = lines(text);
}

/** Comment text as the yaml package takes it: a space after each `#`. */
function lines(text: string): string {
  return text.split('\n').map((line) => (line === '' ? '' : ` ${line}`)).join('\n');
}
