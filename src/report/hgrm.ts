// `--hgrm DIR`: every latency histogram as HdrHistogram percentile-distribution text (`.hgrm`), the
// format of HdrHistogram's outputPercentileDistribution that its plotter and tools read. Values are
// in milliseconds, as the `.ms.hgrm` ending of each file name says.
//
// One file per run and latency kind, `<result file name>.<kind>.ms.hgrm`, and for a column merging
// several runs one more, `merged-<scenario>-<messages>-<group id>-<column>-<n>runs.<kind>.ms.hgrm`.
// A scenario's own histograms (e.g. lateness) are written too, as `<base>.scenario-<name>.ms.hgrm`.
// LIMITATION: empty histograms (execution latency of a run without a task) are not written.

import { randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Histogram } from 'hdr-histogram-js';
import { UsageError } from '../errors.ts';
import { makeFolder } from './result-file.ts';
import { percentileDistribution } from '../metrics/histogram.ts';
import type { Group } from './group.ts';
import { LATENCY_KINDS, type LatencyKind } from './load.ts';

const KIND_SLUG: Readonly<Record<LatencyKind, string>> = {
  endToEnd: 'end-to-end',
  publish: 'publish',
  execution: 'execution',
  completion: 'completion',
};

/** Longest piece of a file name taken from a result file, in characters. */
const SLUG_MAX_CHARS = 64;

/**
 * A piece of a file name from anything a result file says (which anyone can write): letters, digits,
 * `_` and `-` only, so no separator, dot-dot or control character reaches the file system.
 */
const slug = (text: unknown): string => String(text).replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, SLUG_MAX_CHARS) || '-';

/** The `.hgrm` text of a histogram recorded in µs, with values printed in ms. */
export function hgrmText(histogramUs: Histogram): string {
  return percentileDistribution(histogramUs, 1000);
}

/** Writes every non-empty histogram of the groups' runs and merged columns; returns the paths written. */
export async function writeHgrmFiles(dir: string, groups: readonly Group[]): Promise<string[]> {
  const files = new Map<string, Histogram>();
  const add = (base: string, standard: Readonly<Record<LatencyKind, Histogram>>, extra: Readonly<Record<string, Histogram>>): void => {
    const named: [string, Histogram][] = [
      ...LATENCY_KINDS.map((kind): [string, Histogram] => [KIND_SLUG[kind], standard[kind]]),
      ...Object.entries(extra).map(([name, h]): [string, Histogram] => [`scenario-${slug(name)}`, h]),
    ];
    for (const [kind, histogram] of named) {
      if (histogram.totalCount === 0) continue;
      let name = `${base}.${kind}.ms.hgrm`;
      for (let k = 2; files.has(name); k++) name = `${base}-${k}.${kind}.ms.hgrm`;
      files.set(name, histogram);
    }
  };
  for (const group of groups) {
    for (const column of group.columns) {
      for (const run of column.runs) add(path.basename(run.file).replace(/\.json$/, ''), run.histograms, run.extraHistograms);
      if (column.runs.length > 1) {
        const base = `merged-${slug(group.scenario)}-${slug(group.messagesPerRun)}-${slug(group.id)}-${slug(column.label)}-${column.runs.length}runs`;
        add(base, column.histograms, column.extraHistograms);
      }
    }
  }
  try {
    await makeFolder(dir);
  } catch (error) {
    throw new UsageError(`cannot write .hgrm files to ${dir} (${(error as NodeJS.ErrnoException).code ?? 'error'}); choose another folder with --hgrm`);
  }
  const written: string[] = [];
  for (const [name, histogram] of files) {
    const target = path.join(dir, name);
    // Written aside and renamed, so a reader never sees half a file.
    const temporary = path.join(dir, `.${name}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`);
    try {
      await writeFile(temporary, hgrmText(histogram));
      await rename(temporary, target);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw new UsageError(`cannot write ${target} (${(error as NodeJS.ErrnoException).code ?? 'error'}); choose another folder with --hgrm`);
    }
    written.push(target);
  }
  return written;
}
