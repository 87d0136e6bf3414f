// `compare`: result files side by side, one column per run, grouped by scenario and message count.
// Files that cannot be read are reported one line each; the rest are still compared.

import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import Table from 'cli-table3';
import { UsageError } from '../errors.ts';
import { formatCount, formatLatency, formatRate } from './format.ts';
import { readResult, type ResultFile } from './result-file.ts';

export type CompareFormat = 'table' | 'md' | 'json';

interface Row {
  readonly label: string;
  readonly values: (result: ResultFile) => number;
  readonly format: (value: number) => string;
  /** Which way is better, for marking the best column; none for descriptive rows. */
  readonly better?: 'higher' | 'lower';
}

const ROWS: readonly Row[] = [
  { label: 'publish rate', values: (r) => r.throughput.publishPerSec, format: formatRate, better: 'higher' },
  { label: 'receive rate', values: (r) => r.throughput.receivePerSec, format: formatRate, better: 'higher' },
  { label: 'completion rate', values: (r) => r.throughput.completePerSec, format: formatRate, better: 'higher' },
  ...(['p50', 'p90', 'p99', 'p999', 'max'] as const).map(
    (p): Row => ({
      label: `end-to-end ${p === 'p999' ? 'p99.9' : p}`,
      values: (r) => r.latency.endToEnd[p],
      format: formatLatency,
      better: 'lower',
    }),
  ),
  { label: 'publish p99', values: (r) => r.latency.publish.p99, format: formatLatency, better: 'lower' },
  { label: 'lost', values: (r) => r.ledger.lost, format: formatCount, better: 'lower' },
  { label: 'duplicate deliveries', values: (r) => r.ledger.duplicateDeliveries, format: formatCount, better: 'lower' },
  { label: 'redeliveries', values: (r) => r.counters.redeliveries, format: formatCount },
  { label: 'dead-lettered', values: (r) => r.finalDepth.dead, format: formatCount },
  { label: 'harness CPU (cores)', values: (r) => r.harness.cpuCores, format: (v) => v.toFixed(2), better: 'lower' },
];

export interface CompareOutput {
  readonly output: string;
  /** One line per file that could not be used. */
  readonly problems: readonly string[];
}

export async function compareFiles(inputs: readonly string[], format: CompareFormat): Promise<CompareOutput> {
  const problems: string[] = [];
  const results: { file: string; result: ResultFile }[] = [];
  for (const file of await expandInputs(inputs, problems)) {
    try {
      results.push({ file, result: await readResult(file) });
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      problems.push(error.message);
    }
  }
  if (results.length === 0) {
    if (problems.length === 0) problems.push('no result files given');
    return { output: '', problems };
  }
  return { output: render(results, format), problems };
}

/** Files as given; folders contribute their `*.json` files, sorted. */
async function expandInputs(inputs: readonly string[], problems: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    const info = await stat(input).catch(() => undefined);
    if (info?.isDirectory()) {
      const names = (await readdir(input)).filter((name) => name.endsWith('.json')).sort();
      if (names.length === 0) problems.push(`${input}: folder holds no .json result files`);
      files.push(...names.map((name) => path.join(input, name)));
    } else {
      files.push(input);
    }
  }
  return files;
}

function groupKey(result: ResultFile): string {
  return `${result.scenario}, ${formatCount(result.config.messages)} messages of ${result.config.payloadBytes} B`;
}

function columnName(result: ResultFile): string {
  return `${result.broker.name} ${result.broker.mode}`;
}

function render(results: readonly { file: string; result: ResultFile }[], format: CompareFormat): string {
  const groups = new Map<string, ResultFile[]>();
  for (const { result } of results) {
    const key = groupKey(result);
    groups.set(key, [...(groups.get(key) ?? []), result]);
  }
  if (format === 'json') {
    return JSON.stringify(
      [...groups].map(([group, runs]) => ({
        group,
        runs: runs.map((run) => ({
          column: columnName(run),
          runId: run.runId,
          ...Object.fromEntries(ROWS.map((row) => [row.label, row.values(run)])),
        })),
      })),
      null,
      2,
    );
  }
  const sections: string[] = [];
  for (const [group, runs] of groups) {
    const head = ['', ...runs.map(columnName)];
    const body = ROWS.map((row) => {
      const values = runs.map(row.values);
      const best = bestIndex(values, row.better);
      return [row.label, ...values.map((v, k) => `${row.format(v)}${k === best ? ' *' : ''}`)];
    });
    const identity = ['broker', ...runs.map((r) => `${r.broker.serverVersion} [${r.broker.endpointKind}]`)];
    if (format === 'md') {
      const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
      sections.push(
        [`### ${group}`, '', line(head), line(head.map(() => '---')), ...[identity, ...body].map(line), '', '`*` best in row'].join('\n'),
      );
    } else {
      const table = new Table({ head, style: { head: [], border: [] } });
      table.push(identity, ...body);
      sections.push(`${group}\n${table.toString()}\n* best in row`);
    }
  }
  return sections.join('\n\n');
}

function bestIndex(values: readonly number[], better: Row['better']): number {
  if (!better || values.length < 2) return -1;
  let best = 0;
  for (let k = 1; k < values.length; k++) {
    if (better === 'higher' ? values[k]! > values[best]! : values[k]! < values[best]!) best = k;
  }
  return values.every((v) => v === values[best]) ? -1 : best;
}
