// `npm run k8s -- --workers 4 --queue SQS --messages 1000000 --out job.yaml`: the Kubernetes manifests
// of one run over many hosts (manifests.ts says what they hold), from flags checked against the broker
// registry and a workload file checked as `--workload` checks it. Bad input is one line on stderr and
// exit code 2, with nothing written.

import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { adapterNames, findAdapter } from '../../adapters/index.ts';
import { USAGE_EXIT_CODE, UsageError } from '../../src/errors.ts';
import { num } from '../../src/flags.ts';
import { formatCount } from '../../src/format.ts';
import { readWorkload } from '../../src/workload.ts';
import { renderManifests, type RunPlan } from './manifests.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Kubernetes' own ceiling on an Indexed Job's parallelism. */
const MAX_WORKERS = 100_000;
/** Keeps `brokerbench-<id>-workers-<index>`, a pod's host name, within the 63 characters of a DNS label. */
const MAX_RUN_ID_CHARS = 30;

/** Every flag, its value's shape and its help line; the defaults are in the help and in plan(). */
const FLAGS = {
  workers: ['N', 'worker pods, each running one share of the run (required)'],
  queue: ['NAME', 'the broker they all reach, as QUEUE names it (required)'],
  mode: ['MODE', "the broker's delivery mode [default: its default mode]"],
  messages: ['N', "the run's messages, shared among the workers [default: the workload's, else 10,000]"],
  workload: ['FILE', 'a workload file (README: Workload files) for the ConfigMap [default: scenario: throughput]'],
  image: ['IMAGE', `the worker image, as the nodes pull it [default: brokerbench:${VERSION}]`],
  'run-id': ['ID', 'names the objects, the parts folder and the result [default: the UTC time and 4 random hex digits]'],
  'start-at': ['TIME', 'ISO 8601 instant at which every worker starts [default: each when it is up]'],
  secret: ['NAME', "the Secret with the broker's variables [default: brokerbench-broker]"],
  'storage-class': ['NAME', "a ReadWriteMany storage class for the parts [default: the cluster's default]"],
  'storage-size': ['SIZE', 'size of the parts volume [default: 1Gi]'],
  'service-account': ['NAME', 'service account of the workers, for cloud credentials (IRSA, Workload Identity) [default: none]'],
  cpu: ['CPU', "each worker's CPU request [default: 1]"],
  memory: ['SIZE', "each worker's memory request and limit [default: 1Gi]"],
  'deadline-minutes': ['N', 'longest either Job may run, waiting included [default: 60]'],
  out: ['FILE', 'write the manifests here, whole or not at all [default: stdout]'],
} as const;

type FlagName = keyof typeof FLAGS;

export type Generated = { readonly kind: 'help'; readonly text: string } | { readonly kind: 'manifests'; readonly yaml: string; readonly out?: string; readonly plan: RunPlan };

/** Reads the flags (without `node` and the script) and returns the manifests, or the help; bad input throws a UsageError. */
export function generate(argv: readonly string[], now: Date = new Date()): Generated {
  const values = readFlags(argv);
  if (values.help === true) return { kind: 'help', text: helpText() };
  const plan = planOf(values as Partial<Record<FlagName, string>>, argv, now);
  return { kind: 'manifests', yaml: renderManifests(plan), plan, ...(typeof values.out === 'string' ? { out: values.out } : {}) };
}

function readFlags(argv: readonly string[]): Record<string, string | boolean | undefined> {
  const options = Object.fromEntries(Object.keys(FLAGS).map((name) => [name, { type: 'string' as const }]));
  try {
    return parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean' } }, strict: true, allowPositionals: false }).values;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message = (error as Error).message;
    const flag = /'(-[^' ]+)/.exec(message)?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown flag ${flag}; --help lists the flags`);
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw new UsageError(`unexpected argument "${/'([^']*)'/.exec(message)?.[1] ?? ''}"; every setting is a flag, e.g. --messages 1000000`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      throw new UsageError(message.includes('does not take') ? `${flag} takes no value` : `${flag} needs a value (one that starts with "-" is written ${flag}=VALUE)`);
    }
    throw error;
  }
}

function planOf(flags: Partial<Record<FlagName, string>>, argv: readonly string[], now: Date): RunPlan {
  const workers = wholeNumber('--workers', required(flags, 'workers', 'the number of worker pods, e.g. --workers 4'), 1, MAX_WORKERS, "Kubernetes' limit on an Indexed Job's parallelism");
  const queueName = required(flags, 'queue', `the broker the workers share, one of: ${adapterNames()}`);
  if (queueName.includes(',')) throw new UsageError(`--queue ${queueName}: one broker per run (a Job runs one); make one file per broker`);
  if (queueName.includes(':')) throw new UsageError(`--queue ${queueName}: give the mode as --mode ${queueName.slice(queueName.indexOf(':') + 1)}`);
  const adapter = findAdapter(queueName);
  if (!adapter) throw new UsageError(`--queue ${queueName}: no such broker; use one of: ${adapterNames()}`);
  const mode = flags.mode;
  if (mode !== undefined && !adapter.modes.includes(mode)) throw new UsageError(`--mode ${mode}: ${adapter.name} has modes ${adapter.modes.join(', ')}`);
  const modeLabel = mode ?? adapter.defaultMode;
  if (adapter.serverVariable === undefined || !adapter.capabilities(modeLabel).sharedAcrossProcesses) {
    throw new UsageError(`--queue ${queueName}: ${adapter.name} keeps its queues in one process, so workers on other hosts cannot share them; choose a broker with a server`);
  }
  const runId = flags['run-id'] ?? defaultRunId(now);
  if (runId.length > MAX_RUN_ID_CHARS || !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(runId)) {
    throw new UsageError(`--run-id ${runId}: give 1 to ${MAX_RUN_ID_CHARS} lowercase letters, digits or "-", starting and ending with a letter or digit (it names Kubernetes objects)`);
  }
  const workloadFile = flags.workload;
  const workload = workloadFile === undefined ? defaultWorkload(runId) : workloadOf(workloadFile);
  const startAt = flags['start-at'];
  return {
    runId,
    workers,
    queue: adapter.name,
    ...(mode !== undefined ? { mode } : {}),
    modeLabel,
    ...(flags.messages !== undefined ? { messages: wholeNumber('--messages', flags.messages, 1, Number.MAX_SAFE_INTEGER) } : {}),
    workload,
    image: image(flags.image ?? `brokerbench:${VERSION}`),
    secretName: objectName('--secret', flags.secret ?? 'brokerbench-broker'),
    serverVariable: adapter.serverVariable,
    secretVariables: (adapter.secretVariables ?? []).map((variable) => variable.name),
    ...(startAt !== undefined ? { startAt: instant(startAt) } : {}),
    ...(flags['storage-class'] !== undefined ? { storageClass: objectName('--storage-class', flags['storage-class']) } : {}),
    storageSize: quantity('--storage-size', flags['storage-size'] ?? '1Gi', /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/, '1Gi or 500Mi'),
    ...(flags['service-account'] !== undefined ? { serviceAccount: objectName('--service-account', flags['service-account']) } : {}),
    cpu: quantity('--cpu', flags.cpu ?? '1', /^\d+(\.\d+)?m?$/, '1, 1.5 or 500m'),
    memory: quantity('--memory', flags.memory ?? '1Gi', /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$/, '1Gi or 512Mi'),
    deadlineMinutes: wholeNumber('--deadline-minutes', flags['deadline-minutes'] ?? '60', 1, 525_600, 'a year'),
    fileName: flags.out ?? 'job.yaml',
    commandLine: ['npm run k8s --', ...argv.map(shellWord)].join(' '),
  };
}

function required(flags: Partial<Record<FlagName, string>>, name: FlagName, what: string): string {
  const value = flags[name];
  if (value === undefined || value.trim() === '') throw new UsageError(`--${name} is required: ${what}`);
  return value.trim();
}

function wholeNumber(flag: string, text: string, min: number, max: number, why?: string): number {
  const value = num(flag, text, 0);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag} must be a whole number from ${formatCount(min)} to ${formatCount(max)}${why ? ` (${why})` : ''}, got "${text}"`);
  }
  return value;
}

function workloadOf(file: string): RunPlan['workload'] {
  const workload = readWorkload(file);
  const base = path.basename(file);
  // A ConfigMap key takes letters, digits, "-", "_" and "."; the file name is kept so the result names the workload alike.
  const key = /^[-._a-zA-Z0-9]{1,253}$/.test(base) ? base : 'workload.yaml';
  return { key, content: workload.content, name: workload.name };
}

function defaultWorkload(runId: string): RunPlan['workload'] {
  const content = [
    `# The load every worker of run ${runId} shares: the keys are the scenario command's flags`,
    '# (README: Workload files). This one leaves every setting at its default.',
    'scenario: throughput',
    '',
  ].join('\n');
  return { key: 'throughput.yaml', content, name: 'throughput' };
}

function defaultRunId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15).toLowerCase();
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

function image(text: string): string {
  if (!/^\S+$/.test(text)) throw new UsageError(`--image "${text}": an image reference has no spaces, e.g. registry.example.com/brokerbench:${VERSION}`);
  return text;
}

/** A Kubernetes object name (a DNS subdomain): lowercase letters, digits, "-" and ".". */
function objectName(flag: string, text: string): string {
  if (text.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(text)) {
    throw new UsageError(`${flag} ${text}: a Kubernetes name is lowercase letters, digits, "-" and ".", starting and ending with a letter or digit`);
  }
  return text;
}

function quantity(flag: string, text: string, shape: RegExp, example: string): string {
  if (!shape.test(text) || Number.parseFloat(text) <= 0) throw new UsageError(`${flag} must be a Kubernetes quantity above 0, e.g. ${example}, got "${text}"`);
  return text;
}

function instant(text: string): string {
  const shape = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
  const time = Date.parse(text);
  if (!shape.test(text) || Number.isNaN(time)) throw new UsageError(`--start-at must be an ISO 8601 time with its zone, e.g. 2026-12-06T10:00:00Z, got "${text}"`);
  return new Date(time).toISOString();
}

/** An argument as a POSIX shell reads it back. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function helpText(): string {
  const rows = Object.entries(FLAGS).map(([name, [value, help]]) => `  --${`${name} ${value}`.padEnd(26)} ${help}`);
  return [
    'npm run k8s -- --workers N --queue NAME [flags]',
    '',
    'Prints (or writes to --out) the Kubernetes manifests of one brokerbench run over N worker pods:',
    'the workload ConfigMap, a ReadWriteMany claim for the parts, an Indexed Job of the workers and a',
    'Job that merges their parts into one result file. README: Running on Kubernetes.',
    '',
    ...rows,
    `  --${'help'.padEnd(26)} this text`,
    '',
  ].join('\n');
}

/** Writes the file under a temporary name and renames it, so a failure leaves nothing half-written. */
function writeWhole(file: string, text: string): void {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, file);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new UsageError(`--out ${file}: cannot write it (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** The command: 0 done, 2 bad input (one line on stderr, nothing written). */
export function main(argv: readonly string[]): number {
  try {
    const generated = generate(argv);
    if (generated.kind === 'help') process.stdout.write(generated.text);
    else if (generated.out === undefined) process.stdout.write(generated.yaml);
    else writeWhole(generated.out, generated.yaml);
    return 0;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`brokerbench k8s: ${error.message}\n`);
    return USAGE_EXIT_CODE;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
