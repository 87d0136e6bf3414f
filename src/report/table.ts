// Tables and prose for the terminal, fitted to its width: a table drawn as a grid when it fits, and
// stacked (one block per row or per column, `label value` items) when it does not, never left for the
// terminal to wrap mid-row. Returns strings, like every printer.

import Table from 'cli-table3';

/**
 * Columns printers fit to when not told: the terminal's; for a pipe, a file or a CI log, which have
 * none, the COLUMNS variable (`COLUMNS=80 … > out.txt` fits a file to 80), else no limit: lines stay
 * whole there, as grep and scripts reading `…: completed` or a verdict expect.
 */
export function terminalWidth(stream: { columns?: number } = process.stdout, env: NodeJS.ProcessEnv = process.env): number {
  if (stream.columns !== undefined && stream.columns > 0) return stream.columns;
  const given = Number(env['COLUMNS']);
  return Number.isInteger(given) && given > 0 ? given : Number.POSITIVE_INFINITY;
}

/** Widest line of `text`, in characters (the printers draw no colours and no wide characters). */
export function widthOf(text: string): number {
  return Math.max(0, ...text.split('\n').map((line) => [...line].length));
}

export interface FitOptions {
  /** Column heads; the first is the head of the label column (often ''). None for a key-value table. */
  readonly head?: readonly string[];
  /** cli-table3's border characters (compare drops the rules between body rows). */
  readonly chars?: Partial<Record<string, string>>;
  /**
   * Stacked, one block per row (its first cell the block's title, the other cells under the heads), or
   * one block per column (a broker of a comparison: its head the title, each row's label beside its cell).
   */
  readonly stackBy: 'row' | 'column';
}

/**
 * `rows` as a grid when it fits in `width` columns; else turned a quarter (heads down the side, one
 * column per row: a few rows of many figures fit so); else stacked blocks, which always do.
 */
export function fitTable(rows: readonly (readonly string[])[], width: number, options: FitOptions): string {
  const grid = drawGrid(options.head, rows, options.chars);
  if (widthOf(grid) <= width) return grid;
  if (options.head) {
    const head = options.head;
    const turned = drawGrid(
      [head[0] ?? '', ...rows.map((row) => row[0] ?? '')],
      head.slice(1).map((label, k) => [label, ...rows.map((row) => row[k + 1] ?? '')]),
      options.chars,
    );
    if (widthOf(turned) <= width) return turned;
  }
  return stack(rows, width, options).join('\n');
}

function drawGrid(head: readonly string[] | undefined, rows: readonly (readonly string[])[], chars: FitOptions['chars']): string {
  const table = new Table({ ...(head ? { head: [...head] } : {}), style: { head: [], border: [] }, ...(chars ? { chars } : {}) });
  for (const row of rows) table.push([...row]);
  return table.toString();
}

function stack(rows: readonly (readonly string[])[], width: number, options: FitOptions): string[] {
  const head = options.head;
  if (!head) {
    // A key-value table: one block without a title.
    return block(rows.map(([key, value]) => [key ?? '', value ?? '']), width, '');
  }
  const blocks: [string, [string, string][]][] =
    options.stackBy === 'row'
      ? rows.map((row) => [row[0] ?? '', row.slice(1).map((cell, k) => [head[k + 1] ?? '', cell] as [string, string])])
      : head.slice(1).map((title, k) => [title, rows.map((row) => [(row[0] ?? '').trim(), row[k + 1] ?? ''] as [string, string])]);
  // Every block laid out alike, so the same figure sits in the same place in each.
  const all = blocks.flatMap(([, items]) => items);
  const sizes = { label: longest(all.map(([label]) => label)), value: longest(all.map(([, value]) => value)) };
  return blocks.flatMap(([title, items]) => [...wrap(title, width), ...block(items, width, '  ', sizes)]);
}

function longest(texts: readonly string[]): number {
  return Math.max(0, ...texts.map((text) => [...text].length));
}

/**
 * Items `label  value`, labels and values aligned, as many to a line as fit in `width`; an item too
 * wide for any line has a line of its own, its value wrapped under it.
 */
function block(
  items: readonly (readonly [string, string])[],
  width: number,
  indent: string,
  sizes = { label: longest(items.map(([label]) => label)), value: longest(items.map(([, value]) => value)) },
): string[] {
  const { label: labelWidth, value: valueWidth } = sizes;
  const gap = '   ';
  const itemWidth = labelWidth + 2 + valueWidth;
  const perLine = Math.max(1, Math.floor((width - indent.length + gap.length) / (itemWidth + gap.length)));
  if (indent.length + itemWidth > width) {
    // One to a line; a value too long continues under the start of the values, or, when the labels
    // take half the line, under its own label.
    return items.flatMap(([label, value]) => {
      const lead = `${indent}${label.padEnd(labelWidth)}  `;
      if ([...lead].length + [...value].length <= width) return [`${lead}${value}`];
      if ([...lead].length <= width / 2) return wrap(value, width, lead, ' '.repeat([...lead].length));
      return [...wrap(`${indent}${label}`, width), ...wrap(value, width, `${indent}  `)];
    });
  }
  const lines: string[] = [];
  for (let at = 0; at < items.length; at += perLine) {
    const cells = items.slice(at, at + perLine).map(([label, value]) => `${label.padEnd(labelWidth)}  ${value.padEnd(valueWidth)}`);
    lines.push(`${indent}${cells.join(gap)}`.trimEnd());
  }
  return lines;
}

/**
 * `text` broken at spaces into lines of at most `width` (the first led by `first`, the rest by
 * `rest`); a word longer than a line (a path) is kept whole rather than cut, so it can be copied.
 */
export function wrap(text: string, width: number, first = '', rest = first): string[] {
  const lines: string[] = [];
  let line = first;
  let lead = first;
  for (const word of text.split(' ')) {
    const candidate = line === lead ? `${line}${word}` : `${line} ${word}`;
    if ([...candidate].length <= width || line === lead) {
      line = candidate;
      continue;
    }
    lines.push(line);
    lead = rest;
    line = `${rest}${word}`;
  }
  lines.push(line);
  return lines;
}

/** Each line of `text` that is wider than `width` wrapped, later lines indented by `hang`. */
export function wrapLines(text: string, width: number, hang = '  '): string {
  return text
    .split('\n')
    .flatMap((line) => ([...line].length <= width ? [line] : wrap(line, width, '', hang)))
    .join('\n');
}
