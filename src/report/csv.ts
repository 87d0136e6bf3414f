// `compare --format csv`: the comparison for a spreadsheet, one row per broker (column) per workload
// and a column per figure, its unit in the header, raw numbers without separators. Fields are quoted
// as RFC 4180 says (a comma, a quote or a line break inside); lines end in LF, which spreadsheets and
// CSV readers take.
//
// LIMITATION: result files are anyone's to write, so a text field that a spreadsheet would run as a
// formula (starting with =, +, -, @) is given a leading apostrophe; numbers are written as numbers.

import { figuresFor, headerOf } from './figures.ts';
import type { Group } from './group.ts';

export type CsvField = string | number | boolean | undefined;

/** One field: numbers as they are (12 significant digits, none for n/a), text quoted when it must be. */
export function csvField(value: CsvField): string {
  if (value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(Number(value.toPrecision(12))) : '';
  if (typeof value === 'boolean') return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Rows of fields as CSV text, the first row the header. */
export function csvText(rows: readonly (readonly CsvField[])[]): string {
  return rows.map((row) => row.map(csvField).join(',')).join('\n');
}

const IDENTITY = ['workload', 'workload id', 'scenario', 'broker', 'adapter', 'mode', 'server version', 'endpoint', 'runs'];

export function renderCsv(groups: readonly Group[]): string {
  const figures = figuresFor(groups);
  const rows = groups.flatMap((group) =>
    group.columns.map((c) => [
      group.title,
      group.id,
      group.scenario,
      c.label,
      c.adapter,
      c.mode,
      c.serverVersion,
      c.endpointKind,
      c.runs.length,
      ...figures.map((figure) => figure.value(c)),
    ]),
  );
  return csvText([[...IDENTITY, ...figures.map(headerOf)], ...rows]);
}
