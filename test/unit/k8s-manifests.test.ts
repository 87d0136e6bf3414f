// The Kubernetes manifests of a run over many hosts (deploy/kubernetes/): every object validates against
// the Kubernetes API's own schema (kubernetes-models, Kubernetes 1.33), a broken one does not, the
// objects fit together (indices, one claim, the merge waiting for every part, secrets only by
// reference), the merge's wait works in a real shell, and bad flags end in one line, exit code 2,
// nothing written.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { adapters } from '../../adapters/index.ts';
import { generate } from '../../deploy/kubernetes/generate.ts';
import { UsageError } from '../../src/errors.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SQS_RUN = ['--workers', '4', '--queue', 'SQS', '--messages', '1000000', '--run-id', 'k8s-test'];

/** The schema of each kind the generator makes; an object of any other kind fails the test. */
const SCHEMAS: Record<string, new (data: never) => { validate(): void }> = {
  'v1 ConfigMap': ConfigMap,
  'v1 PersistentVolumeClaim': PersistentVolumeClaim,
  'batch/v1 Job': Job,
};

/** Throws, naming the field, when `object` breaks the Kubernetes schema of its kind. */
function validate(object: unknown): void {
  const { apiVersion, kind } = object as { apiVersion?: string; kind?: string };
  const Schema = SCHEMAS[`${apiVersion} ${kind}`];
  if (!Schema) throw new Error(`no schema for ${apiVersion} ${kind}`);
  new Schema(object as never).validate();
}

interface Run {
  readonly text: string;
  readonly configMap: IConfigMap;
  readonly claim: IPersistentVolumeClaim;
  readonly workers: IJob;
  readonly merge: IJob;
}

/** Generates from flags and reads the YAML back the way kubectl would: every document, parsed. */
function run(argv: readonly string[]): Run {
  const generated = generate(argv, new Date('2026-12-06T10:15:00Z'));
  if (generated.kind !== 'manifests') throw new Error('expected manifests');
  const docs = parseAllDocuments(generated.yaml);
  if (!Array.isArray(docs)) throw new Error('no documents');
  for (const doc of docs) expect(doc.errors).toEqual([]);
  const objects = docs.map((doc) => doc.toJS() as { kind: string });
  expect(objects.map((object) => object.kind)).toEqual(['ConfigMap', 'PersistentVolumeClaim', 'Job', 'Job']);
  const [configMap, claim, workers, merge] = objects as unknown as [IConfigMap, IPersistentVolumeClaim, IJob, IJob];
  return { text: generated.yaml, configMap, claim, workers, merge };
}

function podSpec(job: IJob) {
  const spec = job.spec?.template.spec;
  if (!spec) throw new Error(`${job.metadata?.name} has no pod spec`);
  return spec;
}

function container(job: IJob, name: string): IContainer {
  const spec = podSpec(job);
  const found = [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === name);
  if (!found) throw new Error(`${job.metadata?.name} has no container ${name}`);
  return found;
}

function envOf(c: IContainer): Record<string, unknown> {
  return Object.fromEntries((c.env ?? []).map((variable) => [variable.name, variable.value ?? variable.valueFrom]));
}

/** Every broker workers on several hosts can share: one with a server, whose queues other processes reach. */
const SHARED = adapters.filter((adapter) => adapter.serverVariable !== undefined && adapter.capabilities(adapter.defaultMode).sharedAcrossProcesses);

describe('generated manifests against the Kubernetes schema', () => {
  const runs: [string, readonly string[]][] = [
    ['SQS, the defaults', SQS_RUN],
    ['a mode, a workload file and every optional flag', [
      '--workers', '3', '--queue', 'REDIS', '--mode', 'simple', '--workload', 'scenarios/workloads/slow-tasks-mix.yaml', '--run-id', 'mix',
      '--start-at', '2026-12-06T11:00:00+01:00', '--storage-class', 'efs-sc', '--storage-size', '500Mi', '--service-account', 'brokerbench',
      '--cpu', '500m', '--memory', '768Mi', '--deadline-minutes', '90', '--image', 'registry.example.com/brokerbench:0.1.0', '--secret', 'redis-creds',
    ]],
    ...SHARED.map((adapter): [string, readonly string[]] => [`every broker: ${adapter.name}`, ['--workers', '2', '--queue', adapter.aliases[0] ?? adapter.name, '--run-id', 'each']]),
  ];
  it.each(runs)('%s: every object validates', (_label, argv) => {
    const objects = run(argv);
    for (const object of [objects.configMap, objects.claim, objects.workers, objects.merge]) expect(() => validate(object)).not.toThrow();
  });

  it('the check finds a broken manifest: a missing required field or a wrong type fails it', () => {
    const { workers, claim } = run(SQS_RUN);
    expect(() => validate(workers)).not.toThrow();
    const nameless = structuredClone(workers) as { spec: { template: { spec: { containers: { name?: string }[] } } } };
    delete nameless.spec.template.spec.containers[0]!.name;
    expect(() => validate(nameless)).toThrow(/containers\/0 must have required property name/);
    const templateless = structuredClone(workers) as { spec: { template?: unknown } };
    delete templateless.spec.template;
    expect(() => validate(templateless)).toThrow(/must have required property template/);
    const counted = structuredClone(workers) as { spec: { completions: unknown } };
    counted.spec.completions = '4';
    expect(() => validate(counted)).toThrow(/completions must be integer/);
    const badMode = structuredClone(claim) as { spec: { accessModes: string[] } };
    badMode.spec.accessModes = ['ReadWriteAll'];
    expect(() => validate(badMode)).toThrow(/accessModes/);
  });
});

describe('what the manifests say', () => {
  it('N workers at once, one share each by the index Kubernetes gives, never run twice', () => {
    const { workers } = run(SQS_RUN);
    expect(workers.spec).toMatchObject({ completionMode: 'Indexed', completions: 4, parallelism: 4, backoffLimitPerIndex: 0 });
    expect(podSpec(workers).restartPolicy).toBe('Never');
    const env = envOf(container(workers, 'worker'));
    expect(env).toMatchObject({ QUEUE: 'sqs', BROKERBENCH_SHARDS: '4', BROKERBENCH_RUN_ID: 'k8s-test', BROKERBENCH_PARTS_DIR: '/data/parts' });
    // Kubernetes sets it per pod; a value here would give every worker the same share.
    expect(env).not.toHaveProperty('JOB_COMPLETION_INDEX');
    expect(env).not.toHaveProperty('BROKERBENCH_START_AT');
    expect(container(workers, 'worker').args?.slice(0, 2)).toEqual(['worker', '1000000']);
  });

  it('the workload file the workers are given is the one the ConfigMap holds, mounted where the args say', () => {
    const { configMap, workers } = run(['--workers', '2', '--queue', 'REDIS', '--workload', 'scenarios/workloads/slow-tasks-mix.yaml', '--run-id', 'mix']);
    expect(configMap.data).toEqual({ 'slow-tasks-mix.yaml': readFileSync(path.join(ROOT, 'scenarios/workloads/slow-tasks-mix.yaml'), 'utf8') });
    const worker = container(workers, 'worker');
    const args = worker.args ?? [];
    expect(args[0]).toBe('worker');
    expect(args).not.toContain('--mode');
    const file = args[args.indexOf('--workload') + 1]!;
    const mount = worker.volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
    expect(mount?.readOnly).toBe(true);
    const volume = podSpec(workers).volumes?.find((v) => v.name === mount?.name);
    expect(volume?.configMap?.name).toBe(configMap.metadata?.name);
    expect(path.basename(file)).toBe('slow-tasks-mix.yaml');
  });

  it.each(SHARED.map((adapter) => [adapter.name, adapter] as const))(
    '%s: its server comes from the Secret, required, and no secret is written in',
    (_name, adapter) => {
      const { workers, text } = run(['--workers', '2', '--queue', adapter.name, '--secret', 'broker-creds', '--run-id', 'each']);
      const worker = container(workers, 'worker');
      const server = worker.env?.find((variable) => variable.name === adapter.serverVariable);
      expect(server?.value).toBeUndefined();
      expect(server?.valueFrom?.secretKeyRef).toEqual({ name: 'broker-creds', key: adapter.serverVariable });
      expect(worker.envFrom).toEqual([{ secretRef: { name: 'broker-creds' } }]);
      for (const secret of adapter.secretVariables ?? []) {
        expect(worker.env?.find((variable) => variable.name === secret.name)?.value).toBeUndefined();
      }
      expect(text).not.toMatch(/kind: Secret/);
    },
  );

  it('the merge waits on the claim the workers write to, for all N parts of this run, then prints what it merged', () => {
    const { claim, workers, merge } = run(SQS_RUN);
    expect(claim.spec?.accessModes).toEqual(['ReadWriteMany']);
    for (const job of [workers, merge]) {
      expect(podSpec(job).volumes?.find((v) => v.name === 'parts')?.persistentVolumeClaim?.claimName).toBe(claim.metadata?.name);
    }
    expect(container(workers, 'worker').volumeMounts).toContainEqual({ name: 'parts', mountPath: '/data' });
    expect(podSpec(merge).initContainers?.map((c) => c.name)).toEqual(['wait-for-parts', 'merge']);
    expect(envOf(container(merge, 'wait-for-parts'))).toMatchObject({ PARTS: '/data/parts/k8s-test', WORKERS: '4' });
    expect(container(merge, 'merge').args).toEqual(['merge', '/data/parts/k8s-test', '--out', '/data/results/k8s-test.json']);
    expect(podSpec(merge).containers.map((c) => c.command)).toEqual([['cat', '/data/results/k8s-test.json']]);
    expect(merge.spec?.activeDeadlineSeconds).toBe(3600);
  });

  it('every pod runs as user 1000, not root, without privilege escalation or capabilities', () => {
    const { workers, merge } = run(SQS_RUN);
    for (const job of [workers, merge]) {
      expect(podSpec(job).securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
      for (const c of [...(podSpec(job).initContainers ?? []), ...podSpec(job).containers]) {
        expect(c.securityContext, c.name).toEqual({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
      }
    }
  });

  it('optional flags reach the objects they are for', () => {
    const { claim, workers } = run(['--workers', '2', '--queue', 'SQS', '--mode', 'fifo', '--storage-class', 'efs-sc', '--service-account', 'sqs-runner', '--start-at', '2026-12-06T11:00:00+01:00', '--run-id', 'opts']);
    expect(claim.spec?.storageClassName).toBe('efs-sc');
    expect(podSpec(workers).serviceAccountName).toBe('sqs-runner');
    expect(envOf(container(workers, 'worker')).BROKERBENCH_START_AT).toBe('2026-12-06T10:00:00.000Z');
    expect(container(workers, 'worker').args?.slice(-2)).toEqual(['--mode', 'fifo']);
  });

  it('--help lists the flags in one column, and nothing else is made', () => {
    const generated = generate(['--workers', '4', '--help']);
    expect(generated.kind).toBe('help');
    const rows = generated.kind === 'help' ? generated.text.split('\n').filter((line) => line.startsWith('  --')) : [];
    expect(rows.map((row) => row.split(/\s+/)[1])).toEqual(expect.arrayContaining(['--workers', '--queue', '--workload', '--out', '--help']));
    // Where each row's help starts, past the flag and its VALUE (capitals): the same column in every row.
    expect(new Set(rows.map((row) => /^ {2}--\S+(?: [A-Z]+)?\s+/.exec(row)?.[0].length)).size).toBe(1);
  });

  it('a run without --run-id gets one from the time and four random hex digits', () => {
    const generated = generate(['--workers', '2', '--queue', 'SQS'], new Date('2026-12-06T10:15:00Z'));
    expect(generated.kind === 'manifests' && generated.plan.runId).toMatch(/^20261206-101500-[0-9a-f]{4}$/);
  });
});

describe("the merge's wait for the parts, in a real shell", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  function setUp(): { script: string; env: NodeJS.ProcessEnv; parts: string; results: string } {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bb-k8s-wait-'));
    dirs.push(dir);
    const parts = path.join(dir, 'parts', 'k8s-test');
    mkdirSync(parts, { recursive: true });
    const script = container(run(SQS_RUN).merge, 'wait-for-parts').command?.[2] ?? '';
    const results = path.join(dir, 'results');
    return { script, parts, results, env: { PATH: process.env['PATH'], PARTS: parts, WORKERS: '4', RESULTS: results } };
  }

  it('returns at once when all parts are there, and makes the results folder', () => {
    const { script, env, parts, results } = setUp();
    for (let i = 0; i < 4; i++) writeFileSync(path.join(parts, `part-${i}-of-4.json`), '{}');
    const out = spawnSync('sh', ['-c', script], { env, encoding: 'utf8', timeout: 20_000 });
    expect(out.status).toBe(0);
    expect(out.stdout).toBe(`all 4 parts are in ${parts}\n`);
    expect(existsSync(results)).toBe(true);
  });

  it('waits while a part is missing, counting neither journals, nor files being written, nor another run size', async () => {
    const { script, env, parts } = setUp();
    for (let i = 0; i < 3; i++) writeFileSync(path.join(parts, `part-${i}-of-4.json`), '{}');
    writeFileSync(path.join(parts, 'part-3-of-4.json.tmp'), '{');
    writeFileSync(path.join(parts, 'part-3-of-8.json'), '{}');
    writeFileSync(path.join(parts, 'part-3-of-4.journal'), '');
    const child = spawn('sh', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('waiting')) resolve();
        });
        child.on('exit', () => resolve());
      });
      expect(stdout).toBe(`3 of 4 parts in ${parts}; waiting\n`);
      writeFileSync(path.join(parts, 'part-3-of-4.json'), '{}');
      expect(await exited).toBe(0);
      expect(stdout).toBe(`3 of 4 parts in ${parts}; waiting\nall 4 parts are in ${parts}\n`);
    } finally {
      clearTimeout(deadline);
      child.kill('SIGKILL');
    }
  }, 40_000);
});

describe("the merge's wait for a dead worker, in a real shell", () => {
  it('ends when the missing part belongs to a worker whose journal has been quiet for 30 s, and not before', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bb-k8s-dead-'));
    try {
      const parts = path.join(dir, 'parts', 'k8s-test');
      mkdirSync(parts, { recursive: true });
      const script = container(run(SQS_RUN).merge, 'wait-for-parts').command?.[2] ?? '';
      const env = { PATH: process.env['PATH'], PARTS: parts, WORKERS: '4', RESULTS: path.join(dir, 'results') };
      for (let i = 0; i < 3; i++) writeFileSync(path.join(parts, `part-${i}-of-4.json`), '{}');
      const journal = path.join(parts, 'part-3-of-4.journal');
      writeFileSync(journal, '');
      // Written 20 s ago: it may still be alive, so the wait goes on (cut short here).
      const old = (seconds: number): Date => new Date(Date.now() - seconds * 1000);
      utimesSync(journal, old(20), old(20));
      const waiting = spawnSync('sh', ['-c', script], { env, encoding: 'utf8', timeout: 2_000 });
      expect(waiting.stdout).toBe(`3 of 4 parts in ${parts}; waiting\n`);
      // Unwritten for a minute: that worker is dead, and the merge goes ahead with its journal.
      utimesSync(journal, old(60), old(60));
      const done = spawnSync('sh', ['-c', script], { env, encoding: 'utf8', timeout: 20_000 });
      expect(done.status).toBe(0);
      expect(done.stdout).toBe(`3 of 4 parts are in ${parts}; 1 worker(s) died, their journals unwritten for 30 s: merging what they left\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bad input', () => {
  it.each([
    [[], /^--workers is required: /],
    [['--workers', '0', '--queue', 'SQS'], /^--workers must be a whole number from 1 to 100,000 \(Kubernetes' limit/],
    [['--workers', '2.5', '--queue', 'SQS'], /^--workers must be a whole number/],
    [['--workers', 'four', '--queue', 'SQS'], /^--workers must be a number, got "four"$/],
    [['--workers', '4'], /^--queue is required: the broker the workers share, one of: /],
    [['--workers', '4', '--queue', 'NOPE'], /^--queue NOPE: no such broker; use one of: /],
    [['--workers', '4', '--queue', 'REDIS,SQS'], /^--queue REDIS,SQS: one broker per run/],
    [['--workers', '4', '--queue', 'SQS:fifo'], /^--queue SQS:fifo: give the mode as --mode fifo$/],
    [['--workers', '4', '--queue', 'MEMORY'], /^--queue MEMORY: memory keeps its queues in one process/],
    [['--workers', '4', '--queue', 'SQS', '--mode', 'turbo'], /^--mode turbo: sqs has modes standard, fifo/],
    [['--workers', '4', '--queue', 'SQS', '--messages', '0'], /^--messages must be a whole number from 1/],
    [['--workers', '4', '--queue', 'SQS', '--run-id', 'Run_1'], /^--run-id Run_1: give 1 to 30 lowercase letters/],
    [['--workers', '4', '--queue', 'SQS', '--start-at', 'tomorrow'], /^--start-at must be an ISO 8601 time with its zone/],
    [['--workers', '4', '--queue', 'SQS', '--start-at', '2026-12-06T10:00:00'], /^--start-at must be an ISO 8601 time with its zone/],
    [['--workers', '4', '--queue', 'SQS', '--storage-size', '1GB'], /^--storage-size must be a Kubernetes quantity above 0, e\.g\. 1Gi/],
    [['--workers', '4', '--queue', 'SQS', '--cpu', '0'], /^--cpu must be a Kubernetes quantity above 0/],
    [['--workers', '4', '--queue', 'SQS', '--secret', 'My Secret'], /^--secret My Secret: a Kubernetes name is lowercase/],
    [['--workers', '4', '--queue', 'SQS', '--image', 'a b'], /^--image "a b": an image reference has no spaces/],
    [['--workers', '4', '--queue', 'SQS', '--workload', 'no/such/file.yaml'], /^--workload no\/such\/file\.yaml: no such file$/],
    [['--workers', '4', '--queue', 'SQS', '--bogus', '1'], /^unknown flag --bogus; --help lists the flags$/],
    [['--workers', '4', '--queue', 'SQS', '1000000'], /^unexpected argument "1000000"; every setting is a flag/],
    [['--queue', 'SQS', '--workers'], /^--workers needs a value/],
    [['--workers', '4', '--queue', 'SQS', '--help=yes'], /^--help takes no value$/],
  ])('%j is refused in one line', (argv, message) => {
    let thrown: unknown;
    try {
      generate(argv);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(UsageError);
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as Error).message).not.toContain('\n');
  });

  it('a workload file with a broker in it is refused as --workload refuses it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bb-k8s-workload-'));
    try {
      writeFileSync(path.join(dir, 'w.yaml'), 'scenario: throughput\nqueue: SQS\n');
      expect(() => generate(['--workers', '2', '--queue', 'SQS', '--workload', path.join(dir, 'w.yaml')])).toThrow(/"queue" is given on the command line/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('npm run k8s, as a process', () => {
  const script = path.join(ROOT, 'deploy/kubernetes/generate.ts');
  const node = (args: readonly string[]) => spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });

  it('bad input: one line on stderr, exit code 2, nothing on stdout and no file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bb-k8s-cli-'));
    try {
      const out = path.join(dir, 'job.yaml');
      const result = node(['--workers', '0', '--queue', 'SQS', '--out', out]);
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(/^brokerbench k8s: --workers must be a whole number from 1 to 100,000 .*\n$/);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stdout).toBe('');
      expect(existsSync(out)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--out writes the manifests whole, the same as generate() makes them', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bb-k8s-cli-'));
    try {
      const out = path.join(dir, 'job.yaml');
      const argv = [...SQS_RUN, '--out', out];
      const result = node(argv);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      expect(result.stdout).toBe('');
      const generated = generate(argv);
      expect(generated.kind === 'manifests' && generated.yaml).toBe(readFileSync(out, 'utf8'));
      expect(readFileSync(out, 'utf8')).toContain(`kubectl apply -f ${out}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
