// The command line: `scenario` runs one scenario against one broker and writes a result file;
// `compare` puts result files side by side. User errors end in one line and exit code 2.

import { existsSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { adapterNames, findAdapter, resolveEndpoint, type Endpoint } from '../adapters/index.ts';
import { findScenario, scenarios } from '../scenarios/index.ts';
import { BrokerError } from './broker.ts';
import { DEFAULTS, validateConfig, type RunConfig } from './config.ts';
import { USAGE_EXIT_CODE, UsageError } from './errors.ts';
import type { DurationDistribution, TaskWork } from './pipeline/executor.ts';
import { compareFiles } from './report/compare.ts';
import { printSummary } from './report/print.ts';
import { createProgress } from './report/progress.ts';
import { buildResult, ensureWritable, writeResult } from './report/result-file.ts';
import { runScenario } from './runner/runner.ts';

/** Limit for connecting and for single non-blocking commands: unreachable brokers fail well within 5 s. */
const COMMAND_TIMEOUT_MS = 3000;

type Options = Record<string, unknown>;

function scenarioOptions(y: Argv): Argv {
  return y
    .positional('messages', { type: 'string', describe: `messages to publish [default: ${DEFAULTS.messages}]` })
    .options({
      queue: { type: 'string', describe: `broker adapter (env QUEUE): ${adapterNames()} [default: REDIS]` },
      mode: { type: 'string', describe: 'delivery mode: redis-list reliable|simple, sqs standard|fifo' },
      fifo: { type: 'boolean', describe: 'SQS: use a FIFO queue (same as --mode fifo)' },
      scenario: { type: 'string', default: 'throughput', describe: `scenario: ${scenarios.map((s) => s.name).join(', ')}` },
      channel: { type: 'string', describe: `queue name (env CHANNEL_NAME) [default: ${DEFAULTS.channel}]` },
      queues: { type: 'string', describe: `spread the load over N queues [default: ${DEFAULTS.queues}]` },
      'payload-bytes': { type: 'string', describe: `message body size in bytes [default: ${DEFAULTS.payloadBytes}]` },
      batch: { type: 'string', describe: `messages per publish call [default: ${DEFAULTS.publishBatch}; SQS: 10]` },
      publishers: { type: 'string', describe: `publish calls in flight [default: ${DEFAULTS.publishConcurrency}]` },
      rate: { type: 'string', describe: 'fixed publish rate, msg/s; latency counts from the intended send time [default: as fast as possible]' },
      consumers: { type: 'string', describe: `concurrent consumers [default: ${DEFAULTS.consumers}]` },
      'receive-batch': { type: 'string', describe: `most messages per receive call [default: ${DEFAULTS.receiveBatch}; SQS: 10]` },
      'receive-wait-ms': { type: 'string', describe: `longest a receive blocks on an empty queue [default: ${DEFAULTS.receiveWaitMs}]` },
      'visibility-timeout-ms': { type: 'string', describe: `redelivery after this long unacked [default: ${DEFAULTS.visibilityTimeoutMs}]` },
      'max-receives': { type: 'string', describe: 'dead-letter after this many receives [default: 0 = never]' },
      'retry-delay-ms': { type: 'string', describe: `delay before a failed task is retried [default: ${DEFAULTS.retryDelayMs}]` },
      'task-ms': { type: 'string', describe: 'mean task duration per message [default: 0 = no task]' },
      'task-dist': { type: 'string', choices: ['fixed', 'uniform', 'exponential'], default: 'fixed', describe: 'task duration distribution' },
      'task-work': { type: 'string', choices: ['sleep', 'cpu'], default: 'sleep', describe: 'sleep (I/O-bound) or burn CPU' },
      'fail-rate': { type: 'string', describe: 'probability a task fails and is retried [default: 0]' },
      warmup: { type: 'string', describe: 'leave the first N messages out of the histograms [default: 0]' },
      timeout: { type: 'string', describe: `longest the run may take, seconds [default: ${DEFAULTS.timeoutMs / 1000}]` },
      maxlen: { type: 'string', describe: 'redis-stream: trim to about N entries (XADD MAXLEN ~)' },
      seed: { type: 'string', describe: `seed for task durations and failures [default: ${DEFAULTS.seed}]` },
      'results-dir': { type: 'string', describe: `where result files go [default: ${DEFAULTS.resultsDir}]` },
      quiet: { type: 'boolean', default: false, describe: 'no progress on stderr' },
    });
}

async function scenarioCommand(argv: Options): Promise<number> {
  const env = process.env;
  // `scenario -- -5` leaves the count in argv._ rather than in the positional: take it from there.
  const extras = (argv._ as unknown[]).slice(1).map(String);
  if (extras.length > 1 || (extras.length === 1 && argv.messages !== undefined)) {
    throw new UsageError(`unexpected argument "${extras.at(-1)}"; give the message count once, as the first argument`);
  }
  if (extras.length === 1) argv = { ...argv, messages: extras[0] };
  const adapterName = str(argv.queue) ?? env.QUEUE ?? 'REDIS';
  const adapter = findAdapter(adapterName);
  if (!adapter) throw new UsageError(`unknown QUEUE "${adapterName}"; use one of: ${adapterNames()}`);
  const mode = argv.fifo === true ? 'fifo' : (str(argv.mode) ?? adapter.defaultMode);
  if (!adapter.modes.includes(mode)) {
    throw new UsageError(`${adapter.name} has no mode "${mode}"; use one of: ${adapter.modes.join(', ')}`);
  }
  const scenarioName = str(argv.scenario) ?? 'throughput';
  const scenario = findScenario(scenarioName);
  if (!scenario) {
    throw new UsageError(`unknown scenario "${scenarioName}"; use one of: ${scenarios.map((s) => s.name).join(', ')}`);
  }
  const capabilities = adapter.capabilities(mode);
  const batchLimit = capabilities.maxBatchSize;
  const config: RunConfig = {
    adapter: adapter.name,
    mode,
    scenario: scenario.name,
    messages: int('messages', argv.messages, DEFAULTS.messages),
    payloadBytes: int('--payload-bytes', argv['payload-bytes'], DEFAULTS.payloadBytes),
    publishBatch: int('--batch', argv.batch, Math.min(DEFAULTS.publishBatch, batchLimit)),
    publishConcurrency: int('--publishers', argv.publishers, DEFAULTS.publishConcurrency),
    ratePerSec: num('--rate', argv.rate, DEFAULTS.ratePerSec),
    consumers: int('--consumers', argv.consumers, DEFAULTS.consumers),
    receiveBatch: int('--receive-batch', argv['receive-batch'], Math.min(DEFAULTS.receiveBatch, batchLimit)),
    receiveWaitMs: int('--receive-wait-ms', argv['receive-wait-ms'], DEFAULTS.receiveWaitMs),
    visibilityTimeoutMs: int('--visibility-timeout-ms', argv['visibility-timeout-ms'], DEFAULTS.visibilityTimeoutMs),
    maxReceives: int('--max-receives', argv['max-receives'], DEFAULTS.maxReceives),
    retryDelayMs: int('--retry-delay-ms', argv['retry-delay-ms'], DEFAULTS.retryDelayMs),
    task: {
      durationMs: num('--task-ms', argv['task-ms'], 0),
      distribution: (str(argv['task-dist']) ?? 'fixed') as DurationDistribution,
      work: (str(argv['task-work']) ?? 'sleep') as TaskWork,
      failureRate: num('--fail-rate', argv['fail-rate'], 0),
    },
    warmupMessages: int('--warmup', argv.warmup, DEFAULTS.warmupMessages),
    timeoutMs: Math.round(num('--timeout', argv.timeout, DEFAULTS.timeoutMs / 1000) * 1000),
    channel: str(argv.channel) ?? env.CHANNEL_NAME ?? DEFAULTS.channel,
    queues: int('--queues', argv.queues, DEFAULTS.queues),
    seed: int('--seed', argv.seed, DEFAULTS.seed),
    resultsDir: str(argv['results-dir']) ?? DEFAULTS.resultsDir,
  };
  validateConfig(config, capabilities);
  const missing = scenario.requires.filter((capability) => !capabilities[capability]);
  if (missing.length > 0) {
    throw new UsageError(`scenario ${scenario.name} needs ${missing.join(', ')}, which ${adapter.name} (${mode}) does not support`);
  }
  await ensureWritable(config.resultsDir);

  const progress = createProgress(process.stderr, argv.quiet === true);
  const interrupt = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (++signals > 1) process.exit(130);
    process.stderr.write(`\n${signal}: stopping; press Ctrl-C again to quit at once\n`);
    interrupt.abort();
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);

  let endpoint: Endpoint | undefined;
  try {
    endpoint = await resolveEndpoint(adapter, env);
    const maxlen = argv.maxlen === undefined ? undefined : int('--maxlen', argv.maxlen, 0);
    const record = await runScenario({
      adapter,
      connection: {
        ...(endpoint.url === undefined ? {} : { url: endpoint.url }),
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
        settings: {
          ...endpoint.settings,
          maxSockets: Math.max(64, config.publishConcurrency * 4 + config.consumers * 2),
          ...(maxlen === undefined ? {} : { maxLength: maxlen }),
        },
      },
      config,
      scenario,
      signal: interrupt.signal,
      onEvent: (event) => progress.onEvent(event),
    });
    progress.stop();
    const result = buildResult(record);
    const file = await writeResult(config.resultsDir, result);
    process.stdout.write(`${printSummary(result, file)}\n`);
    return result.status === 'completed' ? 0 : result.status === 'interrupted' ? 130 : 1;
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    await endpoint?.stop();
  }
}

async function compareCommand(argv: Options): Promise<number> {
  const files = (argv.files as unknown[] | undefined)?.map(String) ?? [];
  const { output, problems } = await compareFiles(files, (str(argv.format) ?? 'table') as 'table' | 'md' | 'json');
  for (const problem of problems) process.stderr.write(`brokerbench compare: ${problem}\n`);
  if (output) process.stdout.write(`${output}\n`);
  return problems.length > 0 ? USAGE_EXIT_CODE : 0;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/** A number from a flag, or the default; `1_000` and `1,000` are accepted. One-line error otherwise. */
function num(name: string, value: unknown, fallback: number): number {
  const text = str(value);
  if (text === undefined) return fallback;
  const parsed = Number(text.replace(/[_,]/g, ''));
  if (!Number.isFinite(parsed)) throw new UsageError(`${name} must be a number, got "${text}"`);
  return parsed;
}

function int(name: string, value: unknown, fallback: number): number {
  const parsed = num(name, value, fallback);
  if (!Number.isSafeInteger(parsed) || parsed < 0 || (name === 'messages' && parsed === 0)) {
    throw new UsageError(`${name} must be a ${name === 'messages' ? 'positive' : 'non-negative'} integer, got "${String(value)}"`);
  }
  return parsed;
}

export async function main(args: readonly string[]): Promise<number> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  let exitCode = 0;
  await yargs(args as string[])
    .scriptName('brokerbench')
    .command('scenario [messages]', 'run a scenario against one broker and write a result file', scenarioOptions, async (argv) => {
      exitCode = await scenarioCommand(argv);
    })
    .command(
      'compare <files..>',
      'put result files side by side',
      (y) =>
        y
          .positional('files', { type: 'string', array: true, describe: 'result files or folders' })
          .option('format', { type: 'string', choices: ['table', 'md', 'json'], default: 'table' }),
      async (argv) => {
        exitCode = await compareCommand(argv);
      },
    )
    .demandCommand(1, 'name a command: scenario or compare')
    .strict()
    .help()
    .version(false)
    .wrap(Math.min(120, process.stdout.columns ?? 120))
    .fail((message, error) => {
      throw error ?? new UsageError(message);
    })
    .parseAsync();
  return exitCode;
}

/** Prints a user's error as one line (exit 2); anything else is a bug and keeps its stack (exit 1). */
export function reportError(error: unknown): number {
  if (error instanceof UsageError || error instanceof BrokerError) {
    process.stderr.write(`brokerbench: ${error.message}\n`);
    return USAGE_EXIT_CODE;
  }
  process.stderr.write(`brokerbench: internal error (a bug; please report it):\n${error instanceof Error ? error.stack : String(error)}\n`);
  return 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(hideBin(process.argv)).then(
    (code) => process.exit(code),
    (error: unknown) => process.exit(reportError(error)),
  );
}
