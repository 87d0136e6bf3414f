// What `--help` says. The scenario command's flags in groups (the workload, the broker, each scenario's
// own, the output), each with its type and default; then the brokers and their modes, the environment
// variables, examples and the exit codes. Brokers, modes, variables, scenarios and the defaults that
// differ by scenario are read from the adapter registry and the scenario list, so the help follows them.
//
// LIMITATION: a default a scenario sets in code rather than in its `defaults` (fixed-rate's rates when
// neither --rates nor --rate is given) is written here by hand.

import type { Argv, Options } from 'yargs';
import { adapters, adaptersWithFlag, DEFAULT_QUEUE } from '../adapters/index.ts';
import { scenarios } from '../scenarios/index.ts';
import { DEFAULTS } from './config.ts';
import type { ScenarioDefaults } from './scenario.ts';
import { wrap } from './report/table.ts';
import { NOISE_MARGIN } from './report/baseline.ts';

/** What a flag's value is; the help names it beside each flag and says what each means (TYPES). */
export type FlagType = 'count' | 'number' | 'fraction' | 'ms' | 's' | 'bytes' | 'size' | 'list' | 'choice' | 'name' | 'file' | 'folder' | 'switch';

const TYPES: readonly (readonly [FlagType | string, string])[] = [
  ['count', 'a whole number; 1_000 and 1,000 read as 1000'],
  ['number', 'a decimal number'],
  ['fraction', 'a number from 0 to 1'],
  ['ms, s', 'a duration in milliseconds, in seconds (decimals allowed)'],
  ['bytes', 'a whole number of bytes'],
  ['size', 'bytes, or with a unit: 512kb, 64mb, 1gb'],
  ['list', 'numbers separated by commas: 1000,5000'],
  ['choice', 'one of the values shown'],
];

/** The groups of the scenario command's flags, in order; a scenario's own flags are grouped under its name. */
export const WORKLOAD_GROUP = 'Workload:';
export const BROKER_GROUP = 'Broker:';
export const OUTPUT_GROUP = 'Output:';
/** Flags another change adds to every command; grouped with the output when they exist. */
export const COST_FLAGS = ['cost-rate', 'instance-usd-month'];

export interface FlagHelp {
  readonly type: FlagType;
  readonly describe: string;
  /** The default as people read it; absent = none. */
  readonly default?: string;
  /** For a choice; also checked by yargs. */
  readonly choices?: readonly string[];
  /** `Workload:`, `Broker:`, `Output:`, or the name of the scenario whose flag it is. */
  readonly group: string;
}

/** The value `pick` finds in the global defaults or a scenario's (undefined = not set there). */
type Pick = (defaults: ScenarioDefaults) => unknown;

const show = (value: unknown): string => (Array.isArray(value) ? value.join(',') : String(value));

/**
 * `100; backlog: 100000; executor: 1000`: the global default and every scenario whose own default
 * differs, so the help never lists a scenario that has none. `fallback` is the value the CLI uses where
 * the global defaults have none (the task's), `text` says the global one otherwise (`0 = no task`).
 */
function byScenario(pick: Pick, options: { fallback?: unknown; text?: string; format?: (value: unknown) => string } = {}): string {
  const format = options.format ?? show;
  const base = pick(DEFAULTS as ScenarioDefaults) ?? options.fallback;
  const own = scenarios.flatMap((s) => {
    const value = s.defaults === undefined ? undefined : pick(s.defaults);
    return value === undefined || show(value) === show(base) ? [] : [`${s.name}: ${format(value)}`];
  });
  return [options.text ?? format(base), ...own].join('; ');
}

/** A scenario's own default for a flag only it reads, else the global one. */
function ownDefault(scenario: string, pick: Pick, format: (value: unknown) => string = show): string {
  const defaults = scenarios.find((s) => s.name === scenario)?.defaults;
  const value = defaults === undefined ? undefined : pick(defaults);
  return format(value ?? pick(DEFAULTS as ScenarioDefaults));
}

/** `sqs: 10`: the brokers whose limit per call holds a batch below `fallback`, which the CLI then uses. */
function batchLimits(fallback: number): string {
  const limited = adapters.flatMap((a) => {
    const max = Math.min(...a.modes.map((mode) => a.capabilities(mode).maxBatchSize));
    return max < fallback ? [`${a.name}: ${max}`] : [];
  });
  return limited.length === 0 ? '' : `; at most the broker's limit (${limited.join(', ')})`;
}

const seconds = (ms: unknown): string => show(Array.isArray(ms) ? ms.map((v: number) => v / 1000) : (ms as number) / 1000);

/** The message count's default, per scenario. */
export const scenarioMessagesDefault = (): string => byScenario((d) => d.messages);

/** Every flag of `scenario`, by group; the registry's and the scenarios' facts filled in. */
export function scenarioFlags(): Record<string, FlagHelp> {
  const W = WORKLOAD_GROUP;
  const capped = adapters.filter((a) => a.cappedServer !== undefined);
  const maxlen = adaptersWithFlag('maxlen');
  const fifo = adapters.filter((a) => a.modes.includes('fifo')).map((a) => a.name);
  return {
    workload: { group: W, type: 'file', describe: "a YAML or JSON file of a scenario and its settings, keyed by these flags' names; flags given here win" },
    scenario: { group: W, type: 'choice', choices: scenarios.map((s) => s.name), default: 'throughput', describe: 'what to run' },
    'payload-bytes': { group: W, type: 'bytes', default: byScenario((d) => d.payloadBytes), describe: 'message body size' },
    batch: { group: W, type: 'count', default: byScenario((d) => d.publishBatch) + batchLimits(DEFAULTS.publishBatch), describe: 'messages per publish call' },
    publishers: { group: W, type: 'count', default: byScenario((d) => d.publishConcurrency), describe: 'publish calls in flight' },
    rate: { group: W, type: 'number', default: byScenario((d) => d.ratePerSec, { text: '0 = as fast as possible' }), describe: 'fixed publish rate, msg/s; latency counts from the intended send time' },
    'linger-ms': { group: W, type: 'ms', default: byScenario((d) => d.lingerMs), describe: 'under --rate, a batch leaves when full or its oldest message has waited this long' },
    consumers: { group: W, type: 'count', default: byScenario((d) => d.consumers), describe: 'concurrent consumers, each on its own connection' },
    'receive-batch': { group: W, type: 'count', default: byScenario((d) => d.receiveBatch) + batchLimits(DEFAULTS.receiveBatch), describe: 'most messages per receive call' },
    'receive-wait-ms': { group: W, type: 'ms', default: byScenario((d) => d.receiveWaitMs), describe: 'longest a receive blocks on an empty queue' },
    'visibility-timeout-ms': { group: W, type: 'ms', default: byScenario((d) => d.visibilityTimeoutMs), describe: 'an unacked message is delivered again after this long' },
    'max-receives': { group: W, type: 'count', default: byScenario((d) => d.maxReceives, { text: '0 = never' }), describe: 'dead-letter a message after this many receives' },
    'retry-delay-ms': { group: W, type: 'ms', default: byScenario((d) => d.retryDelayMs), describe: "delay before a failed task's message comes back" },
    'task-ms': { group: W, type: 'ms', default: byScenario((d) => d.task?.durationMs, { fallback: 0, text: '0 = no task' }), describe: 'mean task duration per message' },
    'task-dist': { group: W, type: 'choice', choices: ['fixed', 'uniform', 'exponential'], default: byScenario((d) => d.task?.distribution, { fallback: 'fixed' }), describe: 'task duration distribution (uniform: 0 to twice the mean)' },
    'task-work': { group: W, type: 'choice', choices: ['sleep', 'cpu'], default: byScenario((d) => d.task?.work, { fallback: 'sleep' }), describe: 'sleep (I/O-bound) or burn CPU' },
    'fail-rate': { group: W, type: 'fraction', default: byScenario((d) => d.task?.failureRate, { fallback: 0 }), describe: 'probability a task fails and its message is retried' },
    concurrency: { group: W, type: 'count', default: byScenario((d) => d.taskConcurrency, { text: '0 = whole batches' }), describe: 'tasks running at once across all consumers: one worker pool' },
    warmup: { group: W, type: 'count', default: byScenario((d) => d.warmupMessages), describe: 'leave the first N messages out of the latency histograms (rates and the ledger count them)' },
    queues: { group: W, type: 'count', default: byScenario((d) => d.queues), describe: 'spread the load over N queues' },
    timeout: { group: W, type: 's', default: byScenario((d) => d.timeoutMs, { format: seconds }), describe: 'longest the whole run may take' },
    seed: { group: W, type: 'count', default: byScenario((d) => d.seed), describe: 'seed for task durations and failures' },

    queue: {
      group: BROKER_GROUP,
      type: 'name',
      default: DEFAULT_QUEUE,
      describe: 'the broker (env QUEUE): a name from "Brokers and modes" below, NAME:MODE for a mode, or a comma list (REDIS,SQS:fifo) or all to run each in turn and compare them',
    },
    mode: { group: BROKER_GROUP, type: 'choice', default: "the broker's default mode", describe: 'delivery mode: each broker\'s are listed below' },
    fifo: { group: BROKER_GROUP, type: 'switch', default: 'off', describe: `${fifo.join(', ')}: same as --mode fifo` },
    channel: { group: BROKER_GROUP, type: 'name', default: DEFAULTS.channel, describe: 'queue name (env CHANNEL_NAME); each run prefixes its own namespace' },
    maxlen: { group: BROKER_GROUP, type: 'count', default: 'no trimming', describe: `${maxlen.map((o) => o.adapter.name).join(', ')} only: ${maxlen.map((o) => o.setting.purpose)[0] ?? ''} to about N entries` },
    maxmemory: {
      group: BROKER_GROUP,
      type: 'size',
      default: 'off',
      describe: `${capped.map((a) => a.name).join(', ')} only: run against a throw-away ${[...new Set(capped.map((a) => a.cappedServer!.program))].join(', ')} with this memory limit, refusing writes when full; its server variable is not used`,
    },

    rates: { group: 'fixed-rate', type: 'list', default: '--rate, else 1000,5000,20000', describe: 'rates to try in turn, msg/s' },
    duration: { group: 'fixed-rate', type: 's', default: ownDefault('fixed-rate', (d) => d.durationSec), describe: 'measured publishing per rate' },
    'warmup-sec': { group: 'fixed-rate', type: 's', default: ownDefault('fixed-rate', (d) => d.warmupSec), describe: 'publishing per rate before measuring' },
    'retry-intervals': { group: 'retry-dlq', type: 'list', default: ownDefault('retry-dlq', (d) => d.retryIntervalsMs, seconds), describe: 'seconds before each retry; then the dead-letter queue' },
    'poison-rate': { group: 'retry-dlq', type: 'fraction', default: ownDefault('retry-dlq', (d) => d.poisonRate), describe: 'share of messages failing every attempt' },
    'delay-ms': { group: 'delayed', type: 'ms', default: ownDefault('delayed', (d) => d.delayMs), describe: 'each message is due this long after it is sent' },
    'delay-window-ms': { group: 'delayed', type: 'ms', default: ownDefault('delayed', (d) => d.delayWindowMs), describe: 'plus its share of this window, spread over the messages' },
    'task-unit-ms': { group: 'slow-tasks', type: 'ms', default: ownDefault('slow-tasks', (d) => d.taskUnitMs), describe: "per unit of the seed's 0-10 unit tasks" },
    processes: { group: 'crash-recovery', type: 'count', default: ownDefault('crash-recovery', (d) => d.consumerProcesses), describe: 'child processes the --consumers are spread over' },
    'kill-at': { group: 'crash-recovery', type: 'fraction', default: ownDefault('crash-recovery', (d) => d.killAtFraction), describe: 'SIGKILL one consumer process once this share of the messages is done' },
    'kill-mode': {
      group: 'crash-recovery',
      type: 'choice',
      choices: ['random', 'staged'],
      default: ownDefault('crash-recovery', (d) => d.killMode),
      describe: 'random: SIGKILL at a seeded moment, no warning; staged: freeze the victim between broker calls first',
    },
    steps: { group: 'scale-out', type: 'list', default: ownDefault('scale-out', (d) => d.scaleSteps), describe: 'consumer (or process, or queue) counts to run the same load with' },
    'scale-by': { group: 'scale-out', type: 'choice', choices: ['consumers', 'processes', 'queues'], default: ownDefault('scale-out', (d) => d.scaleBy), describe: "consumers in this process, processes of one consumer each, or queues (each read by --consumers / the first step's count)" },
    groups: { group: 'fan-out', type: 'count', default: ownDefault('fan-out', (d) => d.fanOutGroups), describe: 'independent consumer groups every message must reach' },

    'results-dir': { group: OUTPUT_GROUP, type: 'folder', default: DEFAULTS.resultsDir, describe: 'where result files go' },
    quiet: { group: OUTPUT_GROUP, type: 'switch', default: 'off', describe: 'no progress on stderr' },
  };
}

/** `messages per publish call [count] [default: 100]`: the text yargs shows beside a flag. */
function describeFlag(flag: FlagHelp): string {
  const type = flag.choices ? `[${flag.type}: ${flag.choices.join(', ')}]` : `[${flag.type}]`;
  return [flag.describe, type, ...(flag.default === undefined ? [] : [`[default: ${flag.default}]`])].join(' ');
}

/**
 * `flags` declared on `y`, grouped, with our types and defaults in their text (yargs's own would call
 * each a string: the values are read by src/flags.ts, which takes `1_000` and `64mb`). No yargs default
 * is set, so a flag left out stays undefined and the scenario's own default applies.
 */
export function declareFlags(y: Argv, flags: Readonly<Record<string, FlagHelp>>): Argv {
  const options: Record<string, Options> = {};
  for (const [name, flag] of Object.entries(flags)) {
    options[name] = {
      type: flag.type === 'switch' ? 'boolean' : 'string',
      describe: describeFlag(flag),
      ...(flag.choices && flag.type === 'choice' && name !== 'scenario' ? { choices: [...flag.choices] } : {}),
    };
  }
  return y.options(options);
}

/** The groups, in order: workload, broker, each scenario's own (as the scenario list orders them), output. */
export function groupFlags(y: Argv, flags: Readonly<Record<string, FlagHelp>>): Argv {
  const titles = [WORKLOAD_GROUP, BROKER_GROUP, ...scenarios.map((s) => s.name), OUTPUT_GROUP];
  for (const title of titles) {
    const names = Object.entries(flags).filter(([, flag]) => flag.group === title).map(([name]) => name);
    if (title === OUTPUT_GROUP) names.push(...known(y, [...COST_FLAGS, 'help']));
    if (names.length > 0) y.group(names, title.endsWith(':') ? title : `${title}:`);
  }
  return y;
}

/** Those of `names` declared on `y`: yargs would list an undeclared name in a group as a flag. */
export function known(y: Argv, names: readonly string[]): string[] {
  const declared = (y as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key;
  return names.filter((name) => name in declared);
}

/** Columns the help fits in: the terminal's, else COLUMNS, else 80; at most 120, where lines get hard to follow. */
export function helpWidth(stream: { columns?: number } = process.stdout, env: NodeJS.ProcessEnv = process.env): number {
  const given = stream.columns !== undefined && stream.columns > 0 ? stream.columns : Number(env['COLUMNS']);
  return Math.min(120, Number.isInteger(given) && given > 20 ? given : 80);
}

/** A titled section of `name  text` lines, the text wrapped under itself. */
export function section(title: string, rows: readonly (readonly [string, string])[], width: number): string {
  const keyWidth = Math.min(Math.max(...rows.map(([key]) => key.length)), Math.floor(width / 3));
  const lines = rows.flatMap(([key, text]) => {
    const lead = `  ${key.padEnd(keyWidth)}  `;
    if (key.length > keyWidth) return [`  ${key}`, ...wrap(text, width, ' '.repeat(keyWidth + 4))];
    return wrap(text, width, lead, ' '.repeat(lead.length));
  });
  return [...wrap(title, width, '', '  '), ...lines].join('\n');
}

/** Every broker: its QUEUE names and its modes, the default marked. */
export function brokerRows(): [string, string][] {
  return adapters.map((a) => [
    a.name,
    `${a.aliases.join(', ')}; modes: ${a.modes.map((mode) => (mode === a.defaultMode ? `${mode} (default)` : mode)).join(', ')}`,
  ]);
}

/** Every variable the CLI and the registry read: the broker, the queue name, each server and each secret. */
export function environmentRows(): [string, string][] {
  const rows: [string, string][] = [
    ['QUEUE', `the broker, as --queue takes it [default: ${DEFAULT_QUEUE}]`],
    ['CHANNEL_NAME', `the queue name, as --channel [default: ${DEFAULTS.channel}]`],
  ];
  const servers = [...new Set(adapters.flatMap((a) => (a.serverVariable === undefined ? [] : [a.serverVariable])))];
  const secrets = new Map<string, { part: string; owners: string[] }>();
  for (const a of adapters) {
    for (const secret of a.secretVariables ?? []) {
      const entry = secrets.get(secret.name) ?? { part: secret.part, owners: [] };
      entry.owners.push(a.name);
      secrets.set(secret.name, entry);
    }
  }
  for (const name of servers) {
    const owners = adapters.filter((a) => a.serverVariable === name).map((a) => a.name);
    const secret = secrets.get(name);
    const hidden = secret === undefined ? '' : secret.part === 'url-password' ? '; its password is kept out of all output' : '; kept out of all output';
    rows.push([name, `server of ${owners.join(', ')}; unset: the local default, else a throw-away one${hidden}`]);
  }
  for (const [name, secret] of secrets) {
    if (servers.includes(name)) continue;
    rows.push([name, `secret of ${secret.owners.join(', ')}: ${secret.part === 'url-password' ? 'its password is' : 'its value is'} kept out of all output`]);
  }
  rows.push(['COLUMNS', 'width to fit tables to when the output is not a terminal']);
  return rows;
}

/** Exit codes of `scenario`, as src/cli.ts and src/cli-many.ts return them. */
export const SCENARIO_EXIT_CODES: readonly (readonly [string, string])[] = [
  ['0', 'the run completed; with several brokers, every one did'],
  ['1', 'the run timed out or failed (its result file says what was measured) or no result file could be written; with several brokers, any was skipped, failed or timed out (the others are still compared); or a bug, shown with its stack'],
  ['2', "bad input, or the one broker's server cannot be reached: one line on stderr, nothing run or written"],
  ['130', 'interrupted (Ctrl-C): what was measured is written, marked interrupted (with several brokers, what finished is compared); a second Ctrl-C quits at once'],
];

/** Exit codes of `compare` and `report` (what they do with the files: compared, drawn). */
export function readExitCodes(done: 'compared' | 'drawn', baseline: boolean): (readonly [string, string])[] {
  return [
    ['0', `every file was read and ${done}`],
    ['1', 'a bug, shown with its stack'],
    ['2', `bad input: a file that cannot be used (one line each; the others are still ${done}), a bad flag${baseline ? ', or a baseline that shares no workload and broker with the runs compared' : ''}`],
  ];
}

/** `  command` then what it does, indented under it: commands stay whole, for copying. */
function examples(rows: readonly (readonly [string, string])[], width: number): string {
  return ['Examples:', ...rows.flatMap(([command, text]) => [`  ${command}`, ...wrap(text, width, '      ')])].join('\n');
}

/** The text after the scenario command's flags. */
export function scenarioEpilogue(width: number): string {
  return [
    section('Brokers and modes (QUEUE=NAME or NAME:MODE, names in any case):', brokerRows(), width),
    section('Environment (also read from .env in the working folder):', environmentRows(), width),
    section('Types:', TYPES, width),
    examples(
      [
        ['QUEUE=REDIS npm run scenario -- 500000', '500,000 messages through Redis lists; a result file under results/'],
        ['QUEUE=REDIS,SQS npm run scenario -- 10000', 'the same messages through each broker in turn, then one comparison of them'],
        ['QUEUE=SQS npm run scenario -- --workload scenarios/workloads/webhook-ingest.yaml', 'a scenario and its settings from a file; flags given here win'],
        ['npm run compare -- results/', 'every result file under results/ side by side (npm run compare -- --help)'],
      ],
      width,
    ),
    section('Exit codes:', SCENARIO_EXIT_CODES, width),
  ].join('\n\n');
}

/** The flags `compare` adds to the files it reads, for its help and the README. */
export function compareFlags(): Record<string, Options> {
  return {
    format: { type: 'string', choices: ['table', 'md', 'json', 'csv'], describe: 'terminal table, Markdown, JSON, or CSV (one row per broker per workload) [choice: table, md, json, csv] [default: table]' },
    hgrm: { type: 'string', describe: 'also write every histogram as HdrHistogram .hgrm text (ms) into this folder (with --baseline: its baseline/ and new/) [folder]' },
    baseline: {
      type: 'string',
      describe:
        `result files or folders to compare against (repeat the flag for several): each figure's change, marked better or worse only beyond the noise ` +
        `(several runs a side: their ranges do not overlap; one run: more than ${NOISE_MARGIN * 100}%; counts: any change) [file or folder]`,
    },
  };
}

/** The text after compare's flags. */
export function compareEpilogue(width: number): string {
  return [
    examples(
      [
        ['npm run compare -- results/', 'every result file under results/ (and its folders), one table per workload'],
        ['npm run compare -- a.json b.json --format md', 'Markdown, to paste into a pull request'],
        ['npx brokerbench compare --format csv results/ > runs.csv', "for a spreadsheet (npx: npm run's banner would come first)"],
        ['npm run compare -- --baseline results/old.json results/new/', "each figure's change against the old runs"],
      ],
      width,
    ),
    section('Exit codes:', readExitCodes('compared', true), width),
  ].join('\n\n');
}

/** The text after report's flags. */
export function reportEpilogue(width: number): string {
  return [
    examples([['npm run report -- results/ --out report.html', 'one HTML page that opens offline: the comparison, latency by percentile, rates and depth over time']], width),
    section('Exit codes:', readExitCodes('drawn', false), width),
  ].join('\n\n');
}
