// The command line's runs: one planned broker against its server, with Ctrl-C handled (the first stops
// gently, a second quits), its progress drawn and its result file written somewhere, whatever happens.

import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveEndpoint, type Endpoint } from '../adapters/index.ts';
import type { PlannedRun } from './cli-many.ts';
import type { Scenario } from './scenario.ts';
import { stripControls } from './format.ts';
import { scrubSecrets } from './secrets.ts';
import { createProgress, type ProgressDisplay } from './report/progress.ts';
import { buildResult, writeResult, type ResultFile } from './report/result-file.ts';
import { runScenario } from './runner/runner.ts';
import type { Workload } from './workload.ts';

/** Limit for connecting and for single non-blocking commands: unreachable brokers fail well within 5 s. */
const COMMAND_TIMEOUT_MS = 3000;
/** Signals this close after the first are the same Ctrl-C, delivered twice (by the terminal and by npm). */
const SAME_SIGNAL_MS = 500;

/** A run planned from the flags for one broker; settings it cannot take throw UsageError. */
export interface CliPlan extends PlannedRun {
  readonly scenario: Scenario;
  readonly maxlen: number | undefined;
}

/** Runs `body` with Ctrl-C handled: the first stops the run gently (the signal it gets), a second quits. */
export async function withInterrupt<T>(body: (interrupt: AbortSignal) => Promise<T>): Promise<T> {
  const interrupt = new AbortController();
  let firstSignalAtMs: number | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    // Ctrl-C in a terminal reaches this process and `npm run`, which forwards it: the same keypress can
    // arrive twice within a few ms. Only a signal after SAME_SIGNAL_MS is a second Ctrl-C.
    const nowMs = performance.now();
    if (firstSignalAtMs !== undefined && nowMs - firstSignalAtMs < SAME_SIGNAL_MS) return;
    if (firstSignalAtMs !== undefined) {
      process.stderr.write(`${signal} again: quitting at once; no result written, the run's queues may be left behind\n`);
      process.exit(130);
    }
    firstSignalAtMs = nowMs;
    // The bar is cleared first, so the line below and the summary after it are not drawn over.
    activeProgress?.stop();
    process.stderr.write(`\n${signal}: stopping; work in hand gets a moment, then the result is written; press Ctrl-C again to quit at once\n`);
    interrupt.abort();
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    return await body(interrupt.signal);
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}

/** The progress display of the run in hand, cleared by a signal before anything else is written. */
let activeProgress: ProgressDisplay | undefined;

/** Runs a planned broker against its server and writes its result file (undefined if nowhere would take it). */
export async function executeRun(plan: CliPlan, signal: AbortSignal, quiet: boolean, workload?: Workload): Promise<{ result: ResultFile; file: string | undefined }> {
  const { choice: { adapter }, config, scenario, maxlen } = plan;
  const maxlenSetting = adapter.flagSettings?.['maxlen']?.setting;
  const progress = createProgress(process.stderr, quiet);
  activeProgress = progress;
  let endpoint: Endpoint | undefined;
  try {
    // --maxmemory: a throw-away server with that limit, never the one the environment names.
    const capped = config.maxMemoryBytes > 0 ? adapter.cappedServer : undefined;
    endpoint = capped ? await capped.start(config.maxMemoryBytes) : await resolveEndpoint(adapter, process.env);
    const record = await runScenario({
      adapter,
      connection: {
        ...(endpoint.url === undefined ? {} : { url: endpoint.url }),
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
        settings: {
          ...endpoint.settings,
          maxSockets: Math.max(64, config.publishConcurrency * 4 + Math.max(config.consumers * config.fanOutGroups, ...config.scaleSteps) * 2),
          ...(maxlen === undefined || maxlenSetting === undefined ? {} : { [maxlenSetting]: maxlen }),
        },
      },
      config,
      scenario,
      signal,
      onEvent: (event) => progress.onEvent(event),
    });
    progress.stop();
    const result = buildResult(record, workload);
    return { result, file: await writeResultSomewhere(config.resultsDir, result) };
  } finally {
    progress.stop();
    activeProgress = undefined;
    await endpoint?.stop();
  }
}

/**
 * Writes the result to `dir`; if that fails now (it was checked before the run, but a folder can vanish
 * or a disk fill up meanwhile), to a folder under the system's temporary directory, saying so: a
 * measured run is never thrown away for want of a place to put it. Undefined if both fail (said on stderr).
 */
async function writeResultSomewhere(dir: string, result: ResultFile): Promise<string | undefined> {
  try {
    return await writeResult(dir, result);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const fallback = path.join(tmpdir(), 'brokerbench-results');
    try {
      const file = await writeResult(fallback, result);
      process.stderr.write(`brokerbench: cannot write results to ${dir} (${code}); wrote ${file} instead\n`);
      return file;
    } catch {
      process.stderr.write(`brokerbench: cannot write results to ${dir} (${code}) nor to ${fallback}; the summary below is all that is left\n`);
      return undefined;
    }
  }
}

/** Writes `text` and a newline, with the environment's secrets scrubbed and no terminal control characters. */
export function print(stream: NodeJS.WriteStream, text: string): void {
  stream.write(`${stripControls(scrubSecrets(text))}\n`);
}
