// `QUEUE=REDIS,SQS,REDIS:simple` or `QUEUE=all`: one workload on each broker in turn, one result file
// each, then one comparison of exactly those files, printed and written beside them (Markdown, JSON, HTML).
// Every broker is planned before any runs, so a flag one of them cannot take stops everything (exit 2);
// a broker without a server, or one that lacks what the scenario needs, is listed with the reason.
//
// Exit codes: 0 every broker completed its run; 1 some were skipped, failed or timed out (the others
// still ran and are compared); 2 bad input, before anything ran; 130 interrupted.
//
// LIMITATION: brokers run one after another, not at once, so a host that got busier half-way through
// favours the earlier ones; run the list again in another order to see how much that matters.

import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { adapterNames, adapters, findAdapter } from '../adapters/index.ts';
import type { BrokerAdapter, BrokerCapabilities } from './broker.ts';
import type { RunConfig } from './config.ts';
import { UsageError } from './errors.ts';
import type { RunStatus } from './outcome.ts';
import { compareFiles } from './report/compare.ts';
import type { CostOptions } from './report/cost.ts';
import { reportFiles } from './report/html.ts';
import { makeFolder } from './report/result-file.ts';
import type { Scenario } from './scenario.ts';

/** One entry of the list: a broker and the mode it runs in. */
export interface BrokerChoice {
  readonly adapter: BrokerAdapter;
  readonly mode: string;
}

/** `redis-list reliable`: how a choice is named in every line about it. */
export const choiceLabel = (choice: BrokerChoice): string => `${choice.adapter.name} ${choice.mode}`;

/** True when QUEUE names several brokers (a comma list) or `all`, rather than one. */
export function isBrokerList(queue: string): boolean {
  return queue.includes(',') || queue.trim().toLowerCase() === 'all';
}

/**
 * One `name` or `name:mode`: the adapter (by name or alias) and its mode, the default one if none is
 * given. A name or mode that does not exist is a UsageError naming what does.
 */
export function parseChoice(entry: string, fallbackMode?: string): BrokerChoice {
  const [name = '', mode, ...rest] = entry.split(':').map((part) => part.trim());
  if (rest.length > 0 || name === '' || mode === '') {
    throw new UsageError(`QUEUE entry "${entry}" is not a broker; write NAME or NAME:MODE, e.g. REDIS:simple`);
  }
  const adapter = findAdapter(name);
  if (!adapter) throw new UsageError(`unknown QUEUE "${name}"; use one of: ${adapterNames()}`);
  const chosen = mode ?? fallbackMode ?? adapter.defaultMode;
  if (!adapter.modes.includes(chosen)) {
    throw new UsageError(`${adapter.name} has no mode "${chosen}"; use one of: ${adapter.modes.join(', ')}`);
  }
  return { adapter, mode: chosen };
}

/** `REDIS,SQS,REDIS:simple` or `all` (every registry entry in its default mode); one broker twice is refused. */
export function parseBrokerList(queue: string): BrokerChoice[] {
  const choices =
    queue.trim().toLowerCase() === 'all'
      ? adapters.map((adapter) => ({ adapter, mode: adapter.defaultMode }))
      : queue.split(',').map((entry) => parseChoice(entry));
  const seen = new Set<string>();
  for (const choice of choices) {
    if (seen.has(choiceLabel(choice))) throw new UsageError(`QUEUE names ${choiceLabel(choice)} twice; name each broker and mode once`);
    seen.add(choiceLabel(choice));
  }
  return choices;
}

/** A broker's run, checked and ready; what the CLI plans for one broker. */
export interface PlannedRun {
  readonly choice: BrokerChoice;
  readonly config: RunConfig;
}

/** How one run ended: a result file, or why none was written. */
export type RunEnd = { readonly status: RunStatus; readonly file?: string } | { readonly status: 'skipped'; readonly reason: string };

/** What the multi-broker run needs from the CLI: planning and running one broker, and somewhere to print. */
export interface ManyDeps {
  readonly scenario: Scenario;
  /** Plans one broker with every batch held to `batchLimit`, on queues named `channel`; throws UsageError. */
  plan(choice: BrokerChoice, batchLimit: number, channel: string): PlannedRun;
  /** The channel the user asked for (or the default); each broker gets a fresh one derived from it. */
  readonly channel: string;
  readonly resultsDir: string;
  /** The cost model's rate and instance price (--cost-rate, --instance-usd-month), for the comparison. */
  readonly cost?: CostOptions;
  /** Called once every broker is planned, before any runs: fails (UsageError) if results cannot be written. */
  ready(): Promise<void>;
  /** Runs one planned broker to a result file; a BrokerError (no server) becomes a skip. */
  run(plan: PlannedRun): Promise<RunEnd>;
  /** True once the user pressed Ctrl-C: no further broker starts. */
  interrupted(): boolean;
  out(text: string): void;
  err(text: string): void;
}

/** The capabilities `scenario` needs that this broker in this mode lacks. */
function missingFor(choice: BrokerChoice, scenario: Scenario): string[] {
  const capabilities = choice.adapter.capabilities(choice.mode);
  const needs: (keyof BrokerCapabilities)[] = [...scenario.requires];
  // A scenario whose consumers run in processes of their own (crash-recovery) needs queues they can reach.
  if ((scenario.defaults?.consumerProcesses ?? 0) > 0) needs.push('sharedAcrossProcesses');
  return needs.filter((capability) => !capabilities[capability]);
}

/** Runs every choice in turn and compares what they wrote; returns the exit code (see the file's head). */
export async function runMany(choices: readonly BrokerChoice[], deps: ManyDeps): Promise<number> {
  const ends = new Map<string, RunEnd>();
  const able = choices.filter((choice) => {
    const missing = missingFor(choice, deps.scenario);
    if (missing.length > 0) ends.set(choiceLabel(choice), { status: 'skipped', reason: `scenario ${deps.scenario.name} needs ${missing.join(', ')}, which it does not support` });
    return missing.length === 0;
  });
  // One workload for all: every batch held to the smallest limit among the brokers that will run.
  const limits = able.map((choice) => ({ choice, max: choice.adapter.capabilities(choice.mode).maxBatchSize }));
  const batchLimit = Math.min(...limits.map((l) => l.max));
  // Fresh queues per broker: two modes of one server must not meet each other's leftovers.
  const plans = able.map((choice, k) => deps.plan(choice, batchLimit, `${deps.channel}-${k + 1}`));
  await deps.ready();
  for (const [label, end] of ends) deps.err(`${label}: ${describeEnd(end)}`);
  if (plans.length > 0) deps.err(batchLine(plans, limits));

  for (const plan of plans) {
    if (deps.interrupted()) break;
    const label = choiceLabel(plan.choice);
    deps.err(`${label}: running`);
    const end = await deps.run(plan);
    ends.set(label, end);
    deps.err(`${label}: ${end.status === 'skipped' ? `skipped: ${end.reason}` : `${end.status}${end.file === undefined ? ', no result file' : `, ${end.file}`}`}`);
  }

  // Only completed runs are compared (compare leaves the others out too); those are listed below with their files.
  const files = [...ends.values()].flatMap((end) => (end.status === 'completed' && end.file !== undefined ? [end.file] : []));
  if (files.length > 0) await compareAndWrite(files, deps);
  const notRun = choices.filter((choice) => ends.get(choiceLabel(choice))?.status !== 'completed');
  if (notRun.length > 0) {
    deps.out(`Not completed (${notRun.length} of ${choices.length}):`);
    for (const choice of notRun) deps.out(`  ${choiceLabel(choice)}: ${describeEnd(ends.get(choiceLabel(choice)))}`);
  }
  if (deps.interrupted()) return 130;
  return notRun.length === 0 ? 0 : 1;
}

function describeEnd(end: RunEnd | undefined): string {
  if (end === undefined) return 'not started (interrupted)';
  if (end.status === 'skipped') return `skipped: ${end.reason}`;
  return `${end.status}${end.file === undefined ? '' : `, see ${end.file}`}`;
}

/** One line saying which batch sizes every broker got, and why when a broker's limit set them. */
function batchLine(plans: readonly PlannedRun[], limits: readonly { choice: BrokerChoice; max: number }[]): string {
  const values = (plan: PlannedRun): string => `--batch ${plan.config.publishBatch}, --receive-batch ${plan.config.receiveBatch}`;
  const distinct = [...new Set(plans.map(values))];
  const smallest = limits.reduce((a, b) => (b.max < a.max ? b : a), limits[0]!);
  // Named only when that broker's limit set a value, not when every batch is below every limit anyway.
  const limited = plans.some((plan) => plan.config.publishBatch === smallest.max || plan.config.receiveBatch === smallest.max);
  const why = limited && limits.some((l) => l.max > smallest.max) ? ` (${choiceLabel(smallest.choice)} takes at most ${smallest.max} per call)` : '';
  if (distinct.length === 1) return `every broker gets ${distinct[0]}${why}`;
  return `batches by broker: ${plans.map((plan) => `${choiceLabel(plan.choice)} ${values(plan)}`).join('; ')}`;
}

/** Prints the comparison of `files` and writes it as Markdown, JSON and HTML into the results folder. */
async function compareAndWrite(files: readonly string[], deps: ManyDeps): Promise<void> {
  const cost = deps.cost ? { cost: deps.cost } : {};
  const table = await compareFiles(files, { format: 'table', ...cost });
  for (const problem of table.problems) deps.err(`compare: ${problem}`);
  deps.out(table.output);
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const base = path.join(deps.resultsDir, `${stamp}-comparison-${deps.scenario.name}`);
  await makeFolder(deps.resultsDir);
  for (const format of ['md', 'json'] as const) {
    const { output } = await compareFiles(files, { format, ...cost });
    await writeFile(`${base}.${format}`, `${output}\n`);
  }
  await reportFiles(files, { outFile: `${base}.html`, ...cost });
  deps.err(`wrote the comparison of ${files.length} run(s): ${base}.md, .json and .html`);
}
