// The command line of a run spread over workers: `worker` runs one share (src/runner/worker.ts) and
// writes its part, `merge` turns a parts folder into one result file (src/report/parts.ts). The
// engine that starts the workers (a Kubernetes Indexed Job, docker compose, a shell loop) gives each
// its shard through flags or its environment; flags win.
//
// LIMITATION: workers run the throughput scenario (with --rate for a fixed rate) on a broker every
// worker reaches: a throw-away server one worker would start, or the in-process memory broker, is
// refused.

import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Argv } from 'yargs';
import { DEFAULT_QUEUE, resolveEndpoint, type Endpoint } from '../adapters/index.ts';
import { isBrokerList } from './cli-many.ts';
import { print, withInterrupt, type CliPlan } from './cli-run.ts';
import { DEFAULTS } from './config.ts';
import { UsageError } from './errors.ts';
import { int, str } from './flags.ts';
import { buildPart, mergeParts, printPart, writeNew, writePart } from './report/parts.ts';
import { printSummary } from './report/print.ts';
import { createProgress } from './report/progress.ts';
import { ensureWritable, writeResult, type ResultFile } from './report/result-file.ts';
import { queueNames } from './runner/runner.ts';
import { scrubSecrets } from './secrets.ts';
import { readWorkload, withWorkload } from './workload.ts';
import { journalFileName, MAX_SHARDS, namespaceOf, parsePartName, partFileName, QUEUES_READY_FILE, RUN_ID_PATTERN } from './runner/shard.ts';
import { journalWriterAlive, removeQueues, runWorker } from './runner/worker.ts';

type Options = Record<string, unknown>;

/** Limit for connecting and for single non-blocking commands, as a scenario run has it. */
const COMMAND_TIMEOUT_MS = 3000;
/** Furthest ahead --start-at may be, ms: workers wait connected, and a typo of a day should not hold them. */
const START_AHEAD_LIMIT_MS = 10 * 60_000;
/** Longest --start-at may have passed, ms: a worker later than this would not start with the others. */
const START_LATE_LIMIT_MS = 30_000;

export function workerOptions(y: Argv): Argv {
  return y.options({
    shards: { type: 'string', describe: 'workers the run is spread over (env BROKERBENCH_SHARDS)' },
    shard: { type: 'string', describe: 'this worker, 0 to shards - 1 (env JOB_COMPLETION_INDEX, as a Kubernetes Indexed Job sets it)' },
    'run-id': { type: 'string', describe: 'the run\'s id, the same for every worker: it names the queues, the parts folder and the bodies\' token (env BROKERBENCH_RUN_ID)' },
    'start-at': { type: 'string', describe: 'when every worker starts publishing, ISO-8601 (e.g. 2026-12-06T10:00:00Z), at most 10 minutes ahead (env BROKERBENCH_START_AT) [default: at once]' },
    'parts-dir': { type: 'string', describe: 'the folder every worker writes its part into, under <run-id>/ (env BROKERBENCH_PARTS_DIR)' },
    teardown: { type: 'boolean', default: false, describe: 'remove the run\'s queues instead of running (once no worker runs: after a worker died, the last one cannot)' },
  });
}

export function mergeOptions(y: Argv): Argv {
  return y
    .positional('folder', { type: 'string', describe: 'the run\'s parts folder, <parts-dir>/<run-id>' })
    .options({
      out: { type: 'string', describe: 'write the merged result to this file [default: a new file in results/]' },
    });
}

/** Where a worker's shard comes from: its flags, else the engine's environment. */
interface WorkerPlace {
  readonly shards: number;
  readonly shard: number;
  readonly runId: string;
  readonly startAtMs: number | undefined;
  readonly runDir: string;
}

function placeOf(argv: Options, env: NodeJS.ProcessEnv): WorkerPlace {
  const given = (flag: string, variable: string): string | undefined => str(argv[flag]) ?? str(env[variable]);
  const need = (flag: string, variable: string): string => {
    const value = given(flag, variable);
    if (value === undefined) throw new UsageError(`worker needs --${flag} (or ${variable} in its environment)`);
    return value;
  };
  const shards = int('--shards', need('shards', 'BROKERBENCH_SHARDS'), 0);
  if (shards < 1 || shards > MAX_SHARDS) throw new UsageError(`--shards must be 1 to ${MAX_SHARDS}, got ${shards}`);
  const shard = int('--shard', need('shard', 'JOB_COMPLETION_INDEX'), 0);
  if (shard >= shards) throw new UsageError(`--shard ${shard} is not one of the ${shards} workers (0 to ${shards - 1})`);
  const runId = need('run-id', 'BROKERBENCH_RUN_ID');
  if (!RUN_ID_PATTERN.test(runId)) throw new UsageError(`--run-id "${runId}" must be 1 to 40 letters, digits, '-' or '_'`);
  const partsDir = need('parts-dir', 'BROKERBENCH_PARTS_DIR');
  const startText = given('start-at', 'BROKERBENCH_START_AT');
  let startAtMs: number | undefined;
  if (startText !== undefined) {
    // An instant, so a time zone is required: a bare local time would mean another instant on each host.
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(startText) || Number.isNaN(Date.parse(startText))) {
      throw new UsageError(`--start-at "${startText}" is not an ISO-8601 time with a zone, e.g. 2026-12-06T10:00:00Z`);
    }
    startAtMs = Date.parse(startText);
    const aheadMs = startAtMs - Date.now();
    if (aheadMs > START_AHEAD_LIMIT_MS) throw new UsageError(`--start-at ${startText} is ${Math.round(aheadMs / 60_000)} minutes ahead; give a time at most ${START_AHEAD_LIMIT_MS / 60_000} minutes ahead`);
    if (-aheadMs > START_LATE_LIMIT_MS) throw new UsageError(`--start-at ${startText} passed ${Math.round(-aheadMs / 1000)} s ago, so this worker would not start with the others; give every worker a new --start-at (and a new --run-id)`);
  }
  return { shards, shard, runId, startAtMs, runDir: path.join(partsDir, runId) };
}

/** `brokerbench worker`: one share of a run, or with --teardown the run's queues removed. */
export async function workerCommand(argv: Options, plan: (argv: Options) => CliPlan): Promise<number> {
  const env = process.env;
  // A workload file fills in the flags not given, as it does for `scenario`.
  const workloadFile = str(argv.workload);
  const workload = workloadFile === undefined ? undefined : readWorkload(workloadFile);
  if (workload) argv = withWorkload(argv, workload);
  const queue = str(argv.queue) ?? env.QUEUE ?? DEFAULT_QUEUE;
  if (isBrokerList(queue)) throw new UsageError(`a worker runs one broker, not ${queue}: start the workers of each broker as a run of its own`);
  const place = placeOf(argv, env);
  const planned = plan(argv);
  const { config, choice: { adapter } } = planned;
  if (planned.scenario.name !== 'throughput') {
    throw new UsageError(`workers run the throughput scenario (with --rate for a fixed rate), not ${planned.scenario.name}`);
  }
  if (config.messages < place.shards) throw new UsageError(`${config.messages} messages cannot be shared by ${place.shards} workers: give at least one each`);
  if (!adapter.capabilities(config.mode).sharedAcrossProcesses) {
    throw new UsageError(`${adapter.name} keeps its queues in one process, so workers cannot share them: use a broker with a server`);
  }
  if (config.maxMemoryBytes > 0) throw new UsageError('--maxmemory starts a throw-away server of one worker\'s own; workers need one broker they all reach');
  const endpoint = await resolveEndpoint(adapter, env);
  try {
    if (endpoint.settings['endpointKind'] === 'embedded') {
      const variable = adapter.serverVariable === undefined ? 'its server' : adapter.serverVariable;
      throw new UsageError(`a worker needs the broker every worker reaches, and none was given, so ${adapter.name} would be a throw-away server of this worker's own: set ${variable}`);
    }
    // Tearing down looks at what the run's workers left; it makes no folder of its own.
    if (argv.teardown !== true) await ensureWritable(place.runDir);
    const connection = {
      ...(endpoint.url === undefined ? {} : { url: endpoint.url }),
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      settings: {
        ...endpoint.settings,
        maxSockets: Math.max(64, config.publishConcurrency * 4 + config.consumers * 2),
        ...(planned.maxlen === undefined || adapter.flagSettings?.['maxlen'] === undefined ? {} : { [adapter.flagSettings['maxlen'].setting]: planned.maxlen }),
      },
    };
    if (argv.teardown === true) return await teardownCommand(planned, place, connection);
    return await withInterrupt(async (signal) => {
      const progress = createProgress(process.stderr, argv.quiet === true);
      try {
        const outcome = await runWorker({
          adapter,
          connection,
          config,
          runId: place.runId,
          shard: place.shard,
          shards: place.shards,
          ...(place.startAtMs === undefined ? {} : { startAtMs: place.startAtMs }),
          partsDir: place.runDir,
          signal,
          onEvent: (event) => progress.onEvent(event),
          writePart: (record) => writePart(place.runDir, buildPart(record, workload)),
        });
        progress.stop();
        print(process.stdout, printPart(buildPart(outcome.record, workload), outcome.partFile));
        if (outcome.tornDown) print(process.stdout, `every worker has finished: removed the run's ${queueNames(config).length} queue(s); merge with: brokerbench merge ${place.runDir}`);
        else if (outcome.teardownProblem) print(process.stderr, `brokerbench worker: ${outcome.teardownProblem}; remove them with --teardown`);
        const status = outcome.record.outcome.status;
        return status === 'completed' ? 0 : status === 'interrupted' ? 130 : 1;
      } finally {
        progress.stop();
      }
    });
  } finally {
    await endpoint.stop();
  }
}

/** Removes the run's queues, once no worker of it runs (each has its part, or a journal whose writer is gone). */
async function teardownCommand(planned: CliPlan, place: WorkerPlace, connection: { url?: string; commandTimeoutMs: number; settings: Endpoint['settings'] }): Promise<number> {
  // A run id or parts folder mistyped would otherwise "remove" queues that never were, and say so.
  const left = existsSync(place.runDir) ? readdirSync(place.runDir).filter((name) => name === QUEUES_READY_FILE || parsePartName(name) !== undefined) : [];
  if (left.length === 0) {
    throw new UsageError(`${place.runDir}: no worker of run ${place.runId} left anything there (no part, journal or ${QUEUES_READY_FILE}), so there is nothing to tear down; check --run-id and --parts-dir`);
  }
  for (let shard = 0; shard < place.shards; shard++) {
    const journal = path.join(place.runDir, journalFileName(shard, place.shards));
    if (journalWriterAlive(journal)) {
      throw new UsageError(`${journal}: worker ${shard} is still running; tear down once every worker has finished`);
    }
  }
  const { adapter } = planned.choice;
  const queues = queueNames(planned.config);
  const broker = await adapter.open({ ...connection, namespace: namespaceOf(place.runId), mode: planned.config.mode });
  try {
    const problem = await removeQueues(broker, queues);
    if (problem !== undefined) throw new UsageError(problem);
  } finally {
    await broker.close().catch(() => undefined);
  }
  const parts = Array.from({ length: place.shards }, (_, k) => partFileName(k, place.shards));
  print(process.stdout, `removed the ${queues.length} queue(s) of run ${place.runId} (${adapter.name} ${planned.config.mode}, namespace ${namespaceOf(place.runId)}); the parts (${parts[0]} …) stay in ${place.runDir}`);
  return 0;
}

/** `brokerbench merge DIR/<run-id>`: one result file from every worker's part (or journal, for one that died). */
export async function mergeCommand(argv: Options): Promise<number> {
  const folder = str(argv.folder);
  if (folder === undefined) throw new UsageError('merge needs the parts folder of a run, <parts-dir>/<run-id>');
  const result: ResultFile = await mergeParts(folder);
  const out = str(argv.out);
  let file: string;
  if (out === undefined) {
    await ensureWritable(DEFAULTS.resultsDir);
    file = await writeResult(DEFAULTS.resultsDir, result);
  } else {
    try {
      await writeNew(out, `${scrubSecrets(JSON.stringify(result, null, 2))}\n`);
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new UsageError(`cannot write ${out} (${(error as NodeJS.ErrnoException).code ?? 'error'}); choose another --out`);
    }
    file = out;
  }
  print(process.stdout, printSummary(result, file));
  return result.status === 'completed' ? 0 : 1;
}
