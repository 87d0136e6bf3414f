// Reads the result files `compare` and `report` are given: files as named, folders (and their
// subfolders) for their `*.json`; a parts folder of a run spread over workers (src/report/parts.ts)
// is merged into one run.
// Each file that cannot be used yields one line naming it and the problem; the others are kept.
//
// LIMITATION: a run that did not complete (timeout, failed, interrupted) is left out, since its rates
// cover only part of the work; a copy of a run already read (same run id and start) is counted once.

import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Histogram } from 'hdr-histogram-js';
import { UsageError } from '../errors.ts';
import { decodeHistogram } from '../metrics/histogram.ts';
import { parsePartName } from '../runner/shard.ts';
import { isPartsFolder, mergeParts } from './parts.ts';
import { readResult, type ResultFile } from './result-file.ts';

export const LATENCY_KINDS = ['endToEnd', 'publish', 'execution', 'completion'] as const;
export type LatencyKind = (typeof LATENCY_KINDS)[number];

/** A result file that can be compared, with its histograms decoded. */
export interface LoadedRun {
  readonly file: string;
  readonly result: ResultFile;
  readonly histograms: Readonly<Record<LatencyKind, Histogram>>;
  /** The scenario's own latency histograms (`scenarioData.histograms`), by name, µs. */
  readonly extraHistograms: Readonly<Record<string, Histogram>>;
}

export interface LoadOutcome {
  readonly runs: readonly LoadedRun[];
  /** One line per input that could not be used, `<file>: <problem>`. */
  readonly problems: readonly string[];
}

export async function loadRuns(inputs: readonly string[]): Promise<LoadOutcome> {
  const problems: string[] = [];
  const runs: LoadedRun[] = [];
  const seenPaths = new Set<string>();
  const seenRuns = new Map<string, string>();
  if (inputs.length === 0) problems.push('no result files given');
  for (const { file, parts, inFolder } of await expandInputs(inputs, problems)) {
    const real = await realpath(file).catch(() => path.resolve(file));
    if (seenPaths.has(real)) continue; // `results/ results/x.json`: the same file named twice
    seenPaths.add(real);
    let result: ResultFile;
    try {
      if (!parts && parsePartName(path.basename(file))?.kind === 'part') {
        throw new UsageError(`${file}: one worker's part of a run spread over workers; give its folder (${path.dirname(file)}) to merge them all`);
      }
      result = parts ? await mergeParts(file) : await readResult(file);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      // A comparison a run wrote beside its results (src/cli-many.ts) is compare's output, not a run.
      if (inFolder && (await isComparison(file))) continue;
      problems.push(error.message);
      continue;
    }
    const problem = whyNotComparable(result);
    if (problem) {
      problems.push(`${file}: ${problem}`);
      continue;
    }
    const identity = `${result.runId} ${result.startedAt}`;
    const earlier = seenRuns.get(identity);
    if (earlier !== undefined) {
      problems.push(`${file}: a copy of ${earlier} (run ${result.runId}); counted once`);
      continue;
    }
    const decoded = decodeAll(result);
    if (typeof decoded === 'string') {
      problems.push(`${file}: ${decoded}`);
      continue;
    }
    seenRuns.set(identity, file);
    runs.push({ file, result, ...decoded });
  }
  return { runs, problems };
}

/** The schema `compare --format json` writes (src/report/compare.ts), which names no run. */
export const COMPARISON_SCHEMA = 'brokerbench/comparison';

async function isComparison(file: string): Promise<boolean> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { schema?: unknown } | null;
    return parsed?.schema === COMPARISON_SCHEMA;
  } catch {
    return false;
  }
}

/**
 * Files as given; folders contribute their `*.json` files and their subfolders', sorted by path (so by
 * start time); a parts folder (given, or found inside one) is one run, its files merged, not read one by one.
 */
async function expandInputs(inputs: readonly string[], problems: string[]): Promise<{ file: string; parts: boolean; inFolder: boolean }[]> {
  const files: { file: string; parts: boolean; inFolder: boolean }[] = [];
  for (const input of inputs) {
    const info = await stat(input).catch(() => undefined);
    if (info?.isDirectory() && isPartsFolder(input)) {
      files.push({ file: input, parts: true, inFolder: false });
    } else if (info?.isDirectory()) {
      const entries = await readdir(input, { recursive: true, withFileTypes: true });
      const partsFolders = [...new Set(entries.filter((entry) => entry.isFile() && parsePartName(entry.name) !== undefined).map((entry) => entry.parentPath))];
      const inParts = (file: string): boolean => partsFolders.some((folder) => file.startsWith(`${folder}${path.sep}`));
      const found = entries
        .filter((entry) => entry.isFile() && entry.name.endsWith('.json'))
        .map((entry) => path.join(entry.parentPath, entry.name))
        .filter((file) => !inParts(file))
        .map((file) => ({ file, parts: false, inFolder: true }));
      found.push(...partsFolders.map((folder) => ({ file: folder, parts: true, inFolder: true })));
      found.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
      if (found.length === 0) problems.push(`${input}: folder holds no .json result files`);
      files.push(...found);
    } else {
      files.push({ file: input, parts: false, inFolder: false });
    }
  }
  return files;
}

/** Why a readable result still cannot stand beside others, or undefined when it can. */
function whyNotComparable(result: ResultFile): string | undefined {
  if (result.status !== 'completed') {
    const reason = result.reason ? ` (${result.reason})` : '';
    return `run did not complete: ${String(result.status)}${reason}; its rates cover part of the work, so it is left out`;
  }
  const c = result.config as Partial<ResultFile['config']> | undefined;
  const numbers = ['messages', 'payloadBytes', 'publishBatch', 'publishConcurrency', 'consumers', 'receiveBatch'] as const;
  const missing: string[] = numbers.filter((name) => typeof c?.[name] !== 'number');
  for (const name of ['adapter', 'mode', 'scenario'] as const) if (typeof c?.[name] !== 'string') missing.push(name);
  if (typeof c?.task !== 'object' || c.task === null) missing.push('task');
  if (missing.length > 0) return `config lacks ${missing.join(', ')}, so it cannot be grouped with other runs`;
  for (const kind of LATENCY_KINDS) {
    if (typeof result.latency[kind]?.histogram !== 'string') return `latency.${kind} has no encoded histogram to merge`;
  }
  if (!result.harness || !result.counters || !result.finalDepth) return 'result lacks harness, counters or finalDepth';
  return undefined;
}

function decodeAll(result: ResultFile): Pick<LoadedRun, 'histograms' | 'extraHistograms'> | string {
  const histograms: Partial<Record<LatencyKind, Histogram>> = {};
  for (const kind of LATENCY_KINDS) {
    try {
      histograms[kind] = decodeHistogram(result.latency[kind].histogram);
    } catch {
      return `latency.${kind} histogram does not decode (file damaged?)`;
    }
  }
  const extraHistograms: Record<string, Histogram> = {};
  for (const [name, record] of Object.entries(result.scenarioData?.histograms ?? {})) {
    try {
      extraHistograms[name] = decodeHistogram(record.histogram);
    } catch {
      return `scenarioData.histograms.${name} does not decode (file damaged?)`;
    }
  }
  return { histograms: histograms as Record<LatencyKind, Histogram>, extraHistograms };
}
