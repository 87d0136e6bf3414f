// The answer a comparison leads with: per workload, one entry per broker and mode with what a team
// chooses on (delivery guarantee, ordering, dead letters, delays, sustained rate, p99, lost,
// duplicates, requests and cost per million messages), the run's verdicts, a warning where the
// harness itself was saturated, and the fields where the entry is best by the rule below.
//
// Best (`bestMarks`, also behind the detailed rows of `compare`):
// - only among entries with the same delivery guarantee: an at-most-once broker does not beat
//   at-least-once ones on rate, it does less; each guarantee has its own best;
// - never for a tie: a figure measured over several runs must have its [min, max] clear of every
//   other's (no overlap); where a spread is not known (one run, or a figure with no per-run value)
//   it must be at least TIE_MARGIN (5%) better than every other, as close figures are within what
//   two runs of one broker differ by;
// - counts (lost, duplicates) are exact: best only when strictly lower than every other of the same
//   guarantee, so never when all are 0.
//
// Saturation: the harness sets a floor on what it can measure. A run counts as saturated when
// - its main process used at least CPU_CORE_SHARE (90%) of one core: a Node process runs its
//   JavaScript on one thread, so within 10% of a full core the harness, not the broker, is likely
//   what held the rate (process CPU also counts GC and I/O threads, so this errs towards warning);
// - its consumer processes and main process together used 90% of the machine's cores
//   (`environment.cpuCount`), where the broker on the same host had none left either;
// - its event-loop delay p99 was over EVENT_LOOP_P99_LIMIT_MS (50 ms): the monitor samples every
//   10 ms, so an idle loop reads about 10 ms; 50 ms means callbacks (receives, acks, timestamps)
//   waited 40 ms beyond that in 1% of samples, which the latency figures then include.
// A column merging several runs reports its worst run. The figures of a saturated column are a floor.
//
// LIMITATION: capabilities are the ones the adapter declared for the mode (as the result file
// recorded them), not checked by the run; a file recording none for a field takes the registry's
// current declaration, and one the registry no longer knows counts as at-least-once, unordered,
// without dead letters or delays.

import path from 'node:path';
import { adapters } from '../../adapters/index.ts';
import type { BrokerCapabilities } from '../broker.ts';
import { formatCount, stripControls } from '../format.ts';
import { mergesSteps, type Column, type Group, type Spread } from './group.ts';
import type { LoadedRun } from './load.ts';

export interface AnswerEntry {
  /** The column's label (Column.label). */
  readonly label: string;
  readonly adapter: string;
  readonly mode: string;
  readonly delivery: 'at-most-once' | 'at-least-once';
  readonly ordering: 'fifo' | 'per-group' | 'none';
  readonly deadLetters: boolean;
  readonly delays: boolean;
  /** Sustained: completion rate over the runs (min/median/max), messages per second. */
  readonly ratePerSec: Spread;
  /** End-to-end p99 of the merged histograms, µs; undefined if none. */
  readonly p99Us?: number;
  readonly lost: number;
  readonly duplicates: number;
  /** Billed workload requests per 1M messages, where counted. */
  readonly requestsPerMillion?: number;
  /** Request cost per 1M messages, USD, where priced. */
  readonly usdPerMillion?: number;
  /** Why the harness itself was saturated, e.g. `harness event-loop p99 212 ms`; undefined when not. */
  readonly saturation?: string;
  /** Every run's verdicts, `run` its result file's name. */
  readonly verdicts: readonly { readonly run: string; readonly text: string }[];
  /** Fields where this entry is best (see the head of this file). */
  readonly best: readonly AnswerField[];
}

export type AnswerField = 'rate' | 'p99' | 'lost' | 'duplicates' | 'requests' | 'cost';

export interface Answer {
  readonly groupId: string;
  readonly title: string;
  readonly entries: readonly AnswerEntry[];
}

/** Where no spread is known, a figure must be this much better (relative to the other) to be best. */
export const TIE_MARGIN = 0.05;
/** Share of one core (and of the machine's cores) at which the harness counts as saturated. */
export const CPU_CORE_SHARE = 0.9;
/** Event-loop delay p99 over which the harness counts as saturated, ms. */
export const EVENT_LOOP_P99_LIMIT_MS = 50;

/** The rule, in one line, for the notes under every comparison. */
export const BEST_RULE =
  `Best: only among brokers with the same delivery guarantee (each guarantee has its own); never a tie: over several runs its min … max must not overlap any other's, ` +
  `and without a spread it must be at least ${TIE_MARGIN * 100}% better; counts (lost, duplicates …) only when strictly lower than every other, so never when all are 0.`;

/** What a column's broker promises, as the answer shows it. */
export interface Guarantees {
  readonly delivery: AnswerEntry['delivery'];
  readonly ordering: AnswerEntry['ordering'];
  readonly deadLetters: boolean;
  readonly delays: boolean;
}

const DELIVERIES: readonly string[] = ['at-most-once', 'at-least-once'];
const ORDERINGS: readonly string[] = ['fifo', 'per-group', 'none'];

/** From the result files of the column (the first that records a field), else the registry's declaration for the mode. */
export function guaranteesOf(column: Pick<Column, 'adapter' | 'mode' | 'runs'>): Guarantees {
  const recorded = column.runs.map((run) => (run.result.broker.capabilities ?? {}) as Partial<Record<keyof BrokerCapabilities, unknown>>);
  const declared = registryCapabilities(column.adapter, column.mode);
  const pick = <T>(name: keyof BrokerCapabilities, valid: (value: unknown) => value is T, fallback: T): T => {
    const found = recorded.map((c) => c[name]).find(valid);
    if (found !== undefined) return found;
    const known = declared?.[name];
    return valid(known) ? known : fallback;
  };
  const isBoolean = (value: unknown): value is boolean => typeof value === 'boolean';
  return {
    delivery: pick('delivery', (v): v is Guarantees['delivery'] => typeof v === 'string' && DELIVERIES.includes(v), 'at-least-once'),
    ordering: pick('ordering', (v): v is Guarantees['ordering'] => typeof v === 'string' && ORDERINGS.includes(v), 'none'),
    deadLetters: pick('deadLetter', isBoolean, false),
    delays: pick('delay', isBoolean, false),
  };
}

function registryCapabilities(adapter: string, mode: string): BrokerCapabilities | undefined {
  // The canonical name as result files record it, never an alias.
  const entry = adapters.find((candidate) => candidate.name === adapter);
  return entry?.modes.includes(mode) ? entry.capabilities(mode) : undefined;
}

/** One column's figure for ranking: its value, the [min, max] of its runs when known, and its guarantee. */
export interface Ranked {
  readonly value: number | undefined;
  /** Over several runs; undefined when only one run (or no per-run value) is known. */
  readonly spread?: Pick<Spread, 'min' | 'max'>;
  /** Only entries of the same guarantee are ranked against each other. */
  readonly guarantee: string;
}

/**
 * Which entries are best (the rule at the head of this file): per guarantee, the best value when it
 * clears every other of its guarantee; `exact` figures (counts) need only be strictly better.
 */
export function bestMarks(ranked: readonly Ranked[], better: 'higher' | 'lower', exact = false): boolean[] {
  const marks = ranked.map(() => false);
  const known = ranked.flatMap((r, k) => (r.value !== undefined && Number.isFinite(r.value) ? [{ ...r, value: r.value, k }] : []));
  for (const guarantee of new Set(known.map((r) => r.guarantee))) {
    const peers = known.filter((r) => r.guarantee === guarantee);
    if (peers.length < 2) continue;
    const top = peers.reduce((a, b) => (better === 'higher' ? (b.value > a.value ? b : a) : b.value < a.value ? b : a));
    const others = peers.filter((r) => r !== top);
    const wins = others.every((other) => (exact ? gain(top.value, other.value, better) > 0 : clearlyBetter(top, other, better)));
    if (wins) marks[top.k] = true;
  }
  return marks;
}

/** How much better `a` is than `b`, in the direction that counts (negative: worse). */
function gain(a: number, b: number, better: 'higher' | 'lower'): number {
  return better === 'higher' ? a - b : b - a;
}

function clearlyBetter(a: Ranked & { value: number }, b: Ranked & { value: number }, better: 'higher' | 'lower'): boolean {
  const ahead = gain(a.value, b.value, better);
  if (ahead <= 0) return false;
  // The ranges of the runs must not touch: a point where only one run (or no spread) is known.
  const [x, y] = [a.spread ?? { min: a.value, max: a.value }, b.spread ?? { min: b.value, max: b.value }];
  if (better === 'higher' ? x.min <= y.max : x.max >= y.min) return false;
  if (a.spread && b.spread) return true;
  return b.value === 0 || ahead / Math.abs(b.value) >= TIE_MARGIN;
}

/** [min, max] of a figure over the column's runs; undefined unless at least two runs have it. */
export function runSpread(runs: readonly LoadedRun[], pick: (run: LoadedRun) => number | undefined): Pick<Spread, 'min' | 'max'> | undefined {
  const values = runs.map(pick).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return values.length > 1 ? { min: Math.min(...values), max: Math.max(...values) } : undefined;
}

/** A run's end-to-end p99 when its histogram is one load (not several steps merged) and holds values. */
export function runP99Us(run: LoadedRun): number | undefined {
  const endToEnd = run.result.latency.endToEnd;
  return !mergesSteps(run) && endToEnd.count > 0 ? endToEnd.p99 : undefined;
}

export function answerFor(group: Group): Answer {
  const figures = group.columns.map((column) => ({
    column,
    guarantees: guaranteesOf(column),
    p99Us: column.latencyUs.endToEnd.count > 0 ? column.latencyUs.endToEnd.p99 : undefined,
    requestsPerMillion: column.requests === undefined ? undefined : column.requests.billedPerMessage * 1e6,
    usdPerMillion: column.requests?.usdPerMillionMessages,
  }));
  const rank = (value: (f: (typeof figures)[number]) => number | undefined, spreadOf?: (c: Column) => Ranked['spread']): Ranked[] =>
    figures.map((f) => ({ value: value(f), guarantee: f.guarantees.delivery, ...(spreadOf ? { spread: spreadOf(f.column) } : {}) }));
  const best: Record<AnswerField, boolean[]> = {
    rate: bestMarks(rank((f) => f.column.completePerSec.median, (c) => (c.runs.length > 1 ? c.completePerSec : undefined)), 'higher'),
    p99: bestMarks(rank((f) => f.p99Us, (c) => runSpread(c.runs, runP99Us)), 'lower'),
    lost: bestMarks(rank((f) => f.column.lost), 'lower', true),
    duplicates: bestMarks(rank((f) => f.column.duplicateDeliveries), 'lower', true),
    requests: bestMarks(rank((f) => f.requestsPerMillion), 'lower'),
    cost: bestMarks(rank((f) => f.usdPerMillion), 'lower'),
  };
  const entries = figures.map((f, k): AnswerEntry => {
    const { column } = f;
    const saturation = saturationOf(column.runs);
    return {
      label: column.label,
      adapter: column.adapter,
      mode: column.mode,
      ...f.guarantees,
      ratePerSec: column.completePerSec,
      ...(f.p99Us === undefined ? {} : { p99Us: f.p99Us }),
      lost: column.lost,
      duplicates: column.duplicateDeliveries,
      ...(f.requestsPerMillion === undefined ? {} : { requestsPerMillion: f.requestsPerMillion }),
      ...(f.usdPerMillion === undefined ? {} : { usdPerMillion: f.usdPerMillion }),
      ...(saturation === undefined ? {} : { saturation }),
      verdicts: column.runs.flatMap((run) => run.result.verdicts.map((text) => ({ run: path.basename(run.file), text: stripControls(text) }))),
      best: (Object.keys(best) as AnswerField[]).filter((field) => best[field][k]),
    };
  });
  return { groupId: group.id, title: group.title, entries };
}

/** Why the harness was saturated in the column's worst run (the head of this file), or undefined. */
export function saturationOf(runs: readonly LoadedRun[]): string | undefined {
  const number = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
  let mainCores = 0;
  let machine = { cores: 0, count: 0 };
  let loopP99Ms = 0;
  for (const run of runs) {
    const harness = run.result.harness;
    // A run merged from workers sums their CPU, and they may be on as many machines: the mean per worker
    // stands for one process, and no one machine's cores can be judged.
    const workers = run.result.workers?.length ?? 0;
    const cores = number(harness.cpuCores) / Math.max(1, workers);
    const cpuMs = number(harness.cpuUserMs) + number(harness.cpuSystemMs);
    const children = harness.consumerProcesses;
    const childMs = children ? number(children.cpuUserMs) + number(children.cpuSystemMs) : 0;
    // cpuCores sums the consumer processes in: the main process's share is its part of the CPU time.
    const main = cpuMs > 0 ? (cores * Math.max(0, cpuMs - childMs)) / cpuMs : children ? 0 : cores;
    mainCores = Math.max(mainCores, main);
    const count = workers > 0 ? 0 : number(run.result.environment?.cpuCount);
    if (count > 1 && cores / count > machine.cores / Math.max(1, machine.count)) machine = { cores, count };
    loopP99Ms = Math.max(loopP99Ms, number(harness.eventLoopDelayP99Ms));
  }
  const reasons: string[] = [];
  if (mainCores >= CPU_CORE_SHARE) reasons.push(`harness CPU ${mainCores.toFixed(2)} cores of 1 used`);
  if (machine.count > 1 && machine.cores >= CPU_CORE_SHARE * machine.count) {
    reasons.push(`harness CPU ${machine.cores.toFixed(2)} cores of the machine's ${machine.count} used`);
  }
  if (loopP99Ms > EVENT_LOOP_P99_LIMIT_MS) reasons.push(`harness event-loop p99 ${formatCount(Math.round(loopP99Ms))} ms`);
  return reasons.length > 0 ? reasons.join('; ') : undefined;
}
