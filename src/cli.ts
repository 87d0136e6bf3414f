// The command line: `scenario` runs one scenario against one broker (src/cli-run.ts) or several in turn
// (src/cli-many.ts) and writes result files;
// `compare` puts result files side by side; `report` draws them into one offline HTML file.
// User errors end in one line and exit code 2.

import { isUtf8 } from 'node:buffer';
import { existsSync, readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { adapters, adaptersWithFlag, DEFAULT_QUEUE } from '../adapters/index.ts';
import { findScenario, scenarios } from '../scenarios/index.ts';
import { choiceLabel, isBrokerList, parseBrokerList, parseChoice, runMany, type BrokerChoice } from './cli-many.ts';
import { BrokerError } from './broker.ts';
import type { Scenario } from './scenario.ts';
import { DEFAULTS, type DurationDistribution, type RunConfig, type TaskWork, validateConfig } from './config.ts';
import { USAGE_EXIT_CODE, UsageError } from './errors.ts';
import { byteSize, int, num, numList, str } from './flags.ts';
import { redactUrls } from './redact.ts';
import { scrubSecrets } from './secrets.ts';
import { compareWithBaseline } from './report/baseline.ts';
import { compareFiles, type CompareFormat } from './report/compare.ts';
import { costOptionsFrom, type CostOptions } from './report/cost.ts';
import { reportFiles } from './report/html.ts';
import { printSummary } from './report/print.ts';
import { ensureWritable } from './report/result-file.ts';
import { readWorkload, withWorkload, type Workload } from './workload.ts';
import { executeRun, print, withInterrupt, type CliPlan } from './cli-run.ts';
import { COST_FLAGS, compareEpilogue, compareFlags, declareFlags, groupFlags, helpWidth, known, OUTPUT_GROUP, reportEpilogue, scenarioEpilogue, scenarioFlags, scenarioMessagesDefault } from './cli-help.ts';
import { mergeCommand, mergeOptions, workerCommand, workerOptions } from './cli-worker.ts';

type Options = Record<string, unknown>;

/** The cost model's flags, on scenario, compare and report (src/report/cost.ts). */
const COST_OPTIONS = {
  'cost-rate': { type: 'string', describe: 'also show what a month at this sustained rate would cost: requests billed per message, instances otherwise, and the break-even rate [msg/s]' },
  'instance-usd-month': { type: 'string', describe: 'with --cost-rate: USD a month for one instance of a self-hosted broker (give twice the price for a failover pair) [USD]' },
} as const;

/** The scenario command's flags, grouped, each with its type and default, and what follows them (src/cli-help.ts). */
function scenarioOptions(y: Argv): Argv {
  const flags = scenarioFlags();
  const messages = `messages to publish [count] [default: ${scenarioMessagesDefault()}]`;
  const withFlags = declareFlags(y.positional('messages', { type: 'string', describe: messages }).options(COST_OPTIONS), flags);
  return hideTypes(groupFlags(withFlags, flags)).epilogue(scenarioEpilogue(helpWidth()));
}

async function scenarioCommand(argv: Options): Promise<number> {
  const env = process.env;
  // `scenario -- -5` leaves the count in argv._ rather than in the positional: take it from there.
  const extras = (argv._ as unknown[]).slice(1).map(String);
  if (extras.length > 1 || (extras.length === 1 && argv.messages !== undefined)) {
    throw new UsageError(`unexpected argument "${extras.at(-1)}"; give the message count once, as the first argument`);
  }
  if (extras.length === 1) argv = { ...argv, messages: extras[0] };
  // A workload file fills in the flags not given on the command line, for one broker or several.
  const workloadFile = str(argv.workload);
  const workload = workloadFile === undefined ? undefined : readWorkload(workloadFile);
  if (workload) argv = withWorkload(argv, workload);
  const cost = costOptionsFrom(argv['cost-rate'], argv['instance-usd-month']);
  const queue = str(argv.queue) ?? env.QUEUE ?? DEFAULT_QUEUE;
  if (isBrokerList(queue)) return manyCommand(argv, parseBrokerList(queue), workload, cost);
  const choice = parseChoice(queue, argv.fifo === true ? 'fifo' : str(argv.mode));
  const scenario = findScenarioFlag(argv);
  const { adapter, mode } = choice;
  const missing = scenario.requires.filter((capability) => !adapter.capabilities(mode)[capability]);
  if (missing.length > 0) {
    throw new UsageError(`scenario ${scenario.name} needs ${missing.join(', ')}, which ${adapter.name} (${mode}) does not support`);
  }
  const plan = planRun(argv, choice, scenario);
  await ensureWritable(plan.config.resultsDir);
  return withInterrupt(async (interrupt) => {
    const { result, file } = await executeRun(plan, interrupt, argv.quiet === true, workload);
    print(process.stdout, printSummary(result, file, cost ? { cost } : {}));
    if (file === undefined) return 1;
    return result.status === 'completed' ? 0 : result.status === 'interrupted' ? 130 : 1;
  });
}

/** `--scenario`, found, or one line naming those that exist. */
function findScenarioFlag(argv: Options): Scenario {
  const scenarioName = str(argv.scenario) ?? 'throughput';
  const scenario = findScenario(scenarioName);
  if (!scenario) {
    throw new UsageError(`unknown scenario "${scenarioName}"; use one of: ${scenarios.map((s) => s.name).join(', ')}`);
  }
  return scenario;
}

/**
 * The run configuration for one broker from the flags: the scenario's defaults where a flag is absent,
 * batches held to `batchLimit` (the broker's own, or the smallest of several brokers compared), queues
 * named `channel` when given; checked in full before anything starts.
 */
function planRun(argv: Options, choice: BrokerChoice, scenario: Scenario, batchLimit?: number, channel?: string): CliPlan {
  const env = process.env;
  const { adapter, mode } = choice;
  const capabilities = adapter.capabilities(mode);
  batchLimit ??= capabilities.maxBatchSize;
  // The scenario's own defaults (e.g. executor: 1,000 messages of 1 s tasks) where a flag is not given.
  const d = { ...DEFAULTS, ...scenario.defaults };
  const given: RunConfig = {
    adapter: adapter.name,
    mode,
    scenario: scenario.name,
    messages: int('messages', argv.messages, d.messages),
    payloadBytes: int('--payload-bytes', argv['payload-bytes'], d.payloadBytes),
    publishBatch: int('--batch', argv.batch, Math.min(d.publishBatch, batchLimit)),
    publishConcurrency: int('--publishers', argv.publishers, d.publishConcurrency),
    ratePerSec: num('--rate', argv.rate, d.ratePerSec),
    lingerMs: num('--linger-ms', argv['linger-ms'], d.lingerMs),
    consumers: int('--consumers', argv.consumers, d.consumers),
    receiveBatch: int('--receive-batch', argv['receive-batch'], Math.min(d.receiveBatch, batchLimit)),
    receiveWaitMs: int('--receive-wait-ms', argv['receive-wait-ms'], d.receiveWaitMs),
    visibilityTimeoutMs: int('--visibility-timeout-ms', argv['visibility-timeout-ms'], d.visibilityTimeoutMs),
    maxReceives: int('--max-receives', argv['max-receives'], d.maxReceives),
    retryDelayMs: int('--retry-delay-ms', argv['retry-delay-ms'], d.retryDelayMs),
    task: {
      durationMs: num('--task-ms', argv['task-ms'], d.task?.durationMs ?? 0),
      distribution: (str(argv['task-dist']) ?? d.task?.distribution ?? 'fixed') as DurationDistribution,
      work: (str(argv['task-work']) ?? d.task?.work ?? 'sleep') as TaskWork,
      failureRate: num('--fail-rate', argv['fail-rate'], d.task?.failureRate ?? 0),
    },
    warmupMessages: int('--warmup', argv.warmup, d.warmupMessages),
    timeoutMs: Math.round(num('--timeout', argv.timeout, d.timeoutMs / 1000) * 1000),
    channel: channel ?? str(argv.channel) ?? env.CHANNEL_NAME ?? d.channel,
    queues: int('--queues', argv.queues, d.queues),
    seed: int('--seed', argv.seed, d.seed),
    resultsDir: str(argv['results-dir']) ?? d.resultsDir,
    taskConcurrency: int('--concurrency', argv.concurrency, d.taskConcurrency),
    ratesPerSec: numList('--rates', argv.rates, d.ratesPerSec, 1),
    durationSec: num('--duration', argv.duration, d.durationSec),
    warmupSec: num('--warmup-sec', argv['warmup-sec'], d.warmupSec),
    retryIntervalsMs: numList('--retry-intervals', argv['retry-intervals'], d.retryIntervalsMs, 1000),
    poisonRate: num('--poison-rate', argv['poison-rate'], d.poisonRate),
    delayMs: int('--delay-ms', argv['delay-ms'], d.delayMs),
    delayWindowMs: int('--delay-window-ms', argv['delay-window-ms'], d.delayWindowMs),
    taskUnitMs: num('--task-unit-ms', argv['task-unit-ms'], d.taskUnitMs),
    consumerProcesses: int('--processes', argv.processes, d.consumerProcesses),
    killAtFraction: num('--kill-at', argv['kill-at'], d.killAtFraction),
    killMode: (str(argv['kill-mode']) ?? d.killMode) as RunConfig['killMode'],
    maxMemoryBytes: byteSize('--maxmemory', argv.maxmemory, d.maxMemoryBytes),
    scaleSteps: numList('--steps', argv.steps, d.scaleSteps, 1),
    scaleBy: (str(argv['scale-by']) ?? d.scaleBy) as RunConfig['scaleBy'],
    fanOutGroups: int('--groups', argv.groups, d.fanOutGroups),
  };
  // Checked with every other flag, before anything is written or started; 0 = no trimming.
  const maxlen = argv.maxlen === undefined ? undefined : int('--maxlen', argv.maxlen, 0);
  const maxlenSetting = adapter.flagSettings?.['maxlen']?.setting;
  if (maxlen !== undefined && maxlenSetting === undefined) {
    const owners = adaptersWithFlag('maxlen');
    throw new UsageError(`--maxlen ${owners[0]?.setting.purpose ?? 'is not known'}, so it applies to ${owners.map((o) => o.adapter.name).join(' and ')}, not ${adapter.name}`);
  }
  validateConfig(given, capabilities);
  const config = scenario.configure ? scenario.configure(given, capabilities) : given;
  if (config !== given) validateConfig(config, capabilities);
  if (config.maxMemoryBytes > 0 && adapter.cappedServer === undefined) {
    const capped = adapters.filter((a) => a.cappedServer !== undefined);
    const programs = [...new Set(capped.map((a) => a.cappedServer!.program))].join(' or ');
    throw new UsageError(`--maxmemory starts a throw-away ${programs}, so it applies to ${capped.map((a) => a.name).join(' and ')}, not ${adapter.name}`);
  }
  return { choice, scenario, config, maxlen };
}

/**
 * Several brokers (QUEUE=REDIS,SQS or all): each planned from the same flags, run in turn; see
 * src/cli-many.ts for what is compared and the exit codes.
 */
async function manyCommand(argv: Options, choices: readonly BrokerChoice[], workload: Workload | undefined, cost: CostOptions | undefined): Promise<number> {
  if (argv.fifo === true || argv.mode !== undefined) {
    throw new UsageError('--mode and --fifo apply to one broker; with several, give each its mode in the list, e.g. QUEUE=REDIS:simple,SQS:fifo');
  }
  const scenario = findScenarioFlag(argv);
  const resultsDir = str(argv['results-dir']) ?? DEFAULTS.resultsDir;
  const quiet = argv.quiet === true;
  return withInterrupt((interrupt) =>
    runMany(choices, {
      scenario,
      channel: str(argv.channel) ?? process.env.CHANNEL_NAME ?? DEFAULTS.channel,
      resultsDir,
      ...(cost ? { cost } : {}),
      ready: () => ensureWritable(resultsDir),
      plan: (choice, batchLimit, channel) => {
        try {
          return planRun(argv, choice, scenario, batchLimit, channel);
        } catch (error) {
          if (error instanceof UsageError) throw new UsageError(`${choiceLabel(choice)}: ${error.message}`);
          throw error;
        }
      },
      run: async (plan) => {
        try {
          const { result, file } = await executeRun(plan as CliPlan, interrupt, quiet, workload);
          return file === undefined ? { status: result.status } : { status: result.status, file };
        } catch (error) {
          // A server that is not there (or refused us) skips this broker; the others still run.
          if (error instanceof BrokerError || error instanceof UsageError) return { status: 'skipped', reason: error.message };
          throw error;
        }
      },
      interrupted: () => interrupt.aborted,
      out: (text) => print(process.stdout, text),
      err: (text) => print(process.stderr, text),
    }),
  );
}

async function compareCommand(argv: Options): Promise<number> {
  const files = (argv.files as unknown[] | undefined)?.map(String) ?? [];
  const hgrmDir = str(argv.hgrm);
  const cost = costOptionsFrom(argv['cost-rate'], argv['instance-usd-month']);
  const options = {
    format: (str(argv.format) ?? 'table') as CompareFormat,
    ...(hgrmDir === undefined ? {} : { hgrmDir }),
    ...(cost ? { cost } : {}),
  };
  // --baseline may be given more than once, each a file or a folder: together they are the baseline.
  const baseline = argv.baseline === undefined ? undefined : [argv.baseline].flat().map((value) => str(value));
  if (baseline !== undefined && (baseline.length === 0 || baseline.includes(undefined))) {
    throw new UsageError('--baseline needs a result file or folder, e.g. --baseline results/old.json');
  }
  const { output, problems, notes } = baseline === undefined ? await compareFiles(files, options) : await compareWithBaseline(baseline as string[], files, options);
  for (const problem of problems) print(process.stderr, `brokerbench compare: ${problem}`);
  for (const note of notes) print(process.stderr, `brokerbench compare: ${note}`);
  if (output) print(process.stdout, output);
  return problems.length > 0 ? USAGE_EXIT_CODE : 0;
}

async function reportCommand(argv: Options): Promise<number> {
  const files = (argv.files as unknown[] | undefined)?.map(String) ?? [];
  const hgrmDir = str(argv.hgrm);
  const cost = costOptionsFrom(argv['cost-rate'], argv['instance-usd-month']);
  const { problems, notes } = await reportFiles(files, {
    outFile: str(argv.out) ?? 'report.html',
    ...(hgrmDir === undefined ? {} : { hgrmDir }),
    ...(cost ? { cost } : {}),
  });
  for (const problem of problems) print(process.stderr, `brokerbench report: ${problem}`);
  for (const note of notes) print(process.stderr, `brokerbench report: ${note}`);
  return problems.length > 0 ? USAGE_EXIT_CODE : 0;
}

/** The types shown are ours (src/cli-help.ts), in each flag's text: yargs would call every flag a string. */
function hideTypes(y: Argv): Argv {
  return (y as Argv & { usageConfiguration(config: Record<string, boolean>): Argv }).usageConfiguration({ 'hide-types': true });
}

export async function main(args: readonly string[]): Promise<number> {
  // The runtime's own warnings can quote what they complain about (a deprecation warning quoted a whole
  // REDIS_URL, password included): they go through the same scrubbing writer as everything else.
  process.removeAllListeners('warning');
  process.on('warning', (warning) => print(process.stderr, `(node) ${warning.name}: ${redactUrls(warning.message)}`));
  loadDotEnv('.env');
  let exitCode = 0;
  await hideTypes(yargs(args as string[]))
    .scriptName('brokerbench')
    .command('scenario [messages]', 'run a scenario against one broker and write a result file', scenarioOptions, async (argv) => {
      exitCode = await scenarioCommand(argv);
    })
    .command(
      'compare <files..>',
      'put result files side by side, or against a baseline (--baseline)',
      (y) =>
        hideTypes(
          y
            .positional('files', { type: 'string', array: true, describe: 'result files or folders [file or folder]' })
            .options(compareFlags())
            .options(COST_OPTIONS)
            .group(['baseline'], 'Input:'),
        )
          .group(['format', 'hgrm', ...known(y, [...COST_FLAGS, 'help'])], OUTPUT_GROUP)
          .epilogue(compareEpilogue(helpWidth())),
      async (argv) => {
        exitCode = await compareCommand(argv);
      },
    )
    .command(
      'report <files..>',
      'one offline HTML file: comparison table, latency by percentile, throughput and depth over time',
      (y) =>
        hideTypes(
          y
            .positional('files', { type: 'string', array: true, describe: 'result files or folders [file or folder]' })
            .option('out', { type: 'string', describe: 'where the HTML file goes [file] [default: report.html]' })
            .option('hgrm', { type: 'string', describe: 'also write every histogram as HdrHistogram .hgrm text (ms) into this folder [folder]' })
            .options(COST_OPTIONS),
        )
          .group(['out', 'hgrm', ...known(y, [...COST_FLAGS, 'help'])], OUTPUT_GROUP)
          .epilogue(reportEpilogue(helpWidth())),
      async (argv) => {
        exitCode = await reportCommand(argv);
      },
    )
    .command('worker [messages]', 'run one worker\'s share of a run spread over many, and write its part', (y) => workerOptions(scenarioOptions(y)), async (argv) => {
      exitCode = await workerCommand(argv, (given) => {
        const choice = parseChoice(str(given.queue) ?? process.env.QUEUE ?? DEFAULT_QUEUE, given.fifo === true ? 'fifo' : str(given.mode));
        return planRun(given, choice, findScenarioFlag(given));
      });
    })
    .command('merge <folder>', 'merge the parts of a run spread over workers into one result file', mergeOptions, async (argv) => {
      exitCode = await mergeCommand(argv);
    })
    .demandCommand(1, 'name a command: scenario, compare, report, worker or merge')
    .strict()
    .help('help', 'show this help')
    .version(false)
    .wrap(helpWidth())
    .fail((message, error) => {
      // yargs spreads some messages (invalid choices) over several lines: the user gets one.
      throw error ?? new UsageError(message.replace(/\s*\n\s*/g, ' '));
    })
    .parseAsync();
  return exitCode;
}

/**
 * Variables from `.env` in the working folder, as the seed's scripts read them; absent is fine. One that
 * is a folder, unreadable or not text is refused in one line, as a bad flag is.
 */
function loadDotEnv(file: string): void {
  if (!existsSync(file)) return;
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new UsageError(`${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'}); make it a readable text file of NAME=value lines, or remove it`);
  }
  if (bytes.includes(0) || !isUtf8(bytes)) throw new UsageError(`${file}: not text; make it a text file of NAME=value lines, or remove it`);
  process.loadEnvFile(file);
}

/** Prints a user's error as one line (exit 2); anything else is a bug and keeps its stack (exit 1). */
export function reportError(error: unknown): number {
  if (error instanceof UsageError || error instanceof BrokerError) {
    print(process.stderr, `brokerbench: ${error.message}`);
    return USAGE_EXIT_CODE;
  }
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`brokerbench: internal error (a bug; please report it):\n${scrubSecrets(text)}\n`);
  return 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(hideBin(process.argv)).then(
    (code) => process.exit(code),
    (error: unknown) => process.exit(reportError(error)),
  );
}
