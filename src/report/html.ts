// `report`: one self-contained HTML file from result files. Chart.js is inlined from node_modules and a
// Content-Security-Policy forbids any fetch, so the page opens offline and the same everywhere.
// The page opens on the answer: a summary per workload group (html-summary.ts), then contents, then
// each group's comparison (its detailed table, the sustained rate per broker, the curve of a
// multi-step scenario, latency by percentile), and only then the single runs: timeline, the
// scenario's own tables, configuration. One colour per broker (column label) on every chart.
//
// LIMITATION: a long run's timeline is summed into wider buckets (html-charts.ts TIMELINE_POINTS);
// a fixed-rate curve covers every run of the workload whatever rate each held, so it sits with the
// first of its groups and the others link to it.

import { randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../errors.ts';
import { makeFolder } from './result-file.ts';
import { NOTES, renderRows } from './compare.ts';
import { groupRuns, type Group } from './group.ts';
import { writeHgrmFiles } from './hgrm.ts';
import { loadRuns, type LoadedRun } from './load.ts';
import { pricingNote } from './pricing.ts';
import { assignColours, percentileCharts, stepCurve, throughputBars, timelineChart, type ChartData } from './html-charts.ts';
import { CLIENT_SCRIPT, chartJsSource } from './html-client.ts';
import { escapeHtml, plural } from './html-kit.ts';
import { summaryHtml } from './html-summary.ts';
import { costHtml, type CostOptions } from './cost.ts';

export { percentileCurve } from './html-charts.ts';

function tableHtml(group: Group): string {
  const head = `<tr><th></th>${group.columns.map((c) => `<th>${escapeHtml(c.label)}</th>`).join('')}</tr>`;
  const body = renderRows(group)
    .map(
      (row) =>
        `<tr><th scope="row">${escapeHtml(row.label.trim())}</th>${row.cells
          .map((cell, k) => (row.best[k] ? `<td class="best"><strong>${escapeHtml(cell)}</strong></td>` : `<td>${escapeHtml(cell)}</td>`))
          .join('')}</tr>`,
    )
    .join('\n');
  return `<table class="compare"><thead>${head}</thead><tbody>\n${body}\n</tbody></table>`;
}

function configHtml(run: LoadedRun): string {
  const { result } = run;
  const rows: [string, string][] = [
    ['file', run.file],
    ['run id', result.runId],
    ['started', result.startedAt],
    ['finished', result.finishedAt],
    ['broker', `${result.broker.name} ${result.broker.mode} ${result.broker.serverVersion} at ${result.broker.endpoint} [${result.broker.endpointKind}]`],
  ];
  for (const [key, value] of Object.entries(result.config)) {
    rows.push([`config.${key}`, typeof value === 'object' ? JSON.stringify(value) : String(value)]);
  }
  for (const [key, value] of Object.entries(result.environment ?? {})) rows.push([`environment.${key}`, String(value)]);
  return `<table class="config">${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>`;
}

/** Tables only this run's scenario produced (e.g. results per rate step), as the run's summary prints them. */
function scenarioTablesHtml(run: LoadedRun): string {
  return (run.result.scenarioData?.tables ?? [])
    .map(
      (table) =>
        `<figure><figcaption>${escapeHtml(table.title)}</figcaption><table><thead><tr>${table.head.map((h) => `<th>${escapeHtml(String(h))}</th>`).join('')}</tr></thead>` +
        `<tbody>${table.rows.map((row) => `<tr>${row.map((cell) => `<td>${escapeHtml(String(cell))}</td>`).join('')}</tr>`).join('')}</tbody></table></figure>`,
    )
    .join('');
}

const canvas = (id: string, title: string, heightPx?: number): string =>
  `<figure><figcaption>${escapeHtml(title)}</figcaption><div class="chart"${heightPx === undefined ? '' : ` style="height: ${heightPx}px"`}>` +
  `<canvas id="${id}" role="img" aria-label="${escapeHtml(title)}"></canvas></div></figure>`;

/** Groups that are one workload but for the rate fixed-rate runs held: their curve is one chart. */
function curveSets(groups: readonly Group[]): number[][] {
  const byKey = new Map<string, number[]>();
  groups.forEach((group, g) => {
    // settings come from a key with sorted fields, so equal workloads give equal strings.
    const { headlineRatePerSec: _rate, ...workload } = group.settings;
    const key = JSON.stringify(workload);
    byKey.set(key, [...(byKey.get(key) ?? []), g]);
  });
  return [...byKey.values()];
}

export function renderHtml(groups: readonly Group[], problems: readonly string[], generatedAt: Date, cost?: CostOptions): string {
  const colours = assignColours(groups);
  const data: ChartData = { colours, lineCharts: [], barCharts: [], timelineCharts: [] };
  // The curve of each set of groups goes with its first group; the others link there.
  const curveOf = new Map<number, string>();
  const curveLink = new Map<number, number>();
  for (const set of curveSets(groups)) {
    const chart = stepCurve(set.map((g) => groups[g]!), `g${set[0]}-curve`, colours);
    if (!chart) continue;
    data.lineCharts.push(chart);
    const across = set.length > 1 ? ` Every run of this workload, in ${plural(set.length, 'group')} by the rate each held.` : '';
    curveOf.set(set[0]!, canvas(chart.id, `${chart.title}.${across}`));
    for (const g of set.slice(1)) curveLink.set(g, set[0]!);
  }

  const comparisons = groups.map((group, g) => {
    const bars = throughputBars(group, `g${g}-rate`, colours);
    data.barCharts.push(bars);
    const charts = [canvas(bars.id, bars.title, 70 + 34 * group.columns.length)];
    const curve = curveOf.get(g);
    if (curve !== undefined) charts.push(curve);
    const link = curveLink.get(g);
    const latency = percentileCharts(group, `g${g}`, colours);
    data.lineCharts.push(...latency);
    return (
      `<section class="group" id="group-${g}"><h3>${escapeHtml(group.title)}</h3>\n` +
      `<p class="notes">The answer for this workload is in the <a href="#answer-${g}">summary</a>; every figure, best cells highlighted:</p>\n` +
      (link === undefined ? '' : `<p class="notes">Its curve, with every run of this workload, is under <a href="#group-${link}">${escapeHtml(groups[link]!.title)}</a>.</p>\n`) +
      `${tableHtml(group)}\n${cost ? `${costHtml(group, cost)}\n` : ''}<div class="charts">${charts.join('\n')}</div>\n` +
      `<div class="charts">${latency.map((chart) => canvas(chart.id, chart.title)).join('\n')}</div></section>`
    );
  });

  // Each run's section, by group and result file name, for the summary's links.
  const runAnchors = new Map<string, string>();
  const runSections = groups.map((group, g) => {
    const runs = group.columns.flatMap((column, c) =>
      column.runs.map((run, r) => {
        const id = `g${g}-c${c}-r${r}`;
        const key = `${g}/${path.basename(run.file)}`;
        if (!runAnchors.has(key)) runAnchors.set(key, `#run-${id}`);
        const title = `${column.label}: ${run.result.startedAt} (run ${run.result.runId})`;
        data.timelineCharts.push(timelineChart(run, id, title, column.label, colours[column.label]!));
        const verdicts = run.result.verdicts.map((line) => `<li>${escapeHtml(line)}</li>`).join('');
        return (
          `<section class="run" id="run-${id}"><h4>${escapeHtml(title)}</h4>${canvas(id, 'Messages per second and queue depth over time')}` +
          `${verdicts === '' ? '' : `<ul class="verdicts">${verdicts}</ul>`}${scenarioTablesHtml(run)}` +
          `<details><summary>Configuration</summary>${configHtml(run)}</details></section>`
        );
      }),
    );
    return `<section class="runs" id="runs-${g}"><h3>${escapeHtml(group.title)}</h3>\n${runs.join('\n')}</section>`;
  });

  const summary = summaryHtml(groups, colours, { group: (g) => `#group-${g}`, run: (g, file) => runAnchors.get(`${g}/${file}`) });
  const runCount = groups.reduce((n, g) => n + g.columns.reduce((m, c) => m + c.runs.length, 0), 0);
  const contents = [
    '<li><a href="#summary">Summary</a></li>',
    `<li><a href="#comparisons">Comparisons by workload</a>, then <a href="#runs">single runs</a>:<ol>${groups
      .map((group, g) => `<li><a href="#group-${g}">${escapeHtml(group.title)}</a> · <a href="#runs-${g}">${plural(group.columns.reduce((n, c) => n + c.runs.length, 0), 'run')}</a></li>`)
      .join('')}</ol></li>`,
    '<li><a href="#notes">Notes</a></li>',
    ...(problems.length === 0 ? [] : ['<li><a href="#problems">Files left out</a></li>']),
  ];
  const problemList =
    problems.length === 0
      ? ''
      : `<section class="problems" id="problems"><h2>Files left out</h2><ul>${problems.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul></section>`;
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>brokerbench report</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>brokerbench report</h1> <span class="notes">generated ${escapeHtml(generatedAt.toISOString())} from ${plural(runCount, 'result file')}, ${plural(groups.length, 'workload')}; best cells highlighted (the rule is under <a href="#notes">Notes</a>)</span></header>
${summary}
<nav id="contents"><h2>Contents</h2><ol>${contents.join('\n')}</ol></nav>
${problemList}
<section id="comparisons"><h2>Comparisons by workload</h2>
<p class="notes"><label><input type="checkbox" id="log-y" checked> logarithmic latency axis</label></p>
${comparisons.join('\n')}
</section>
<section id="runs"><h2>Single runs</h2>
${runSections.join('\n')}
</section>
<section id="notes" class="notes"><h2>Notes</h2><p>${escapeHtml(NOTES.join(' '))}</p><p>${escapeHtml(pricingNote())}</p></section>
<script type="application/json" id="report-data">${json}</script>
<script>${chartJsSource()}</script>
<script>${CLIENT_SCRIPT}</script>
</body>
</html>
`;
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0.8em 1.5em; color: #222; }
header h1 { display: inline; font-size: 1.4em; margin: 0 0.5em 0 0; }
h2 { font-size: 1.2em; margin: 1.5em 0 0.4em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; margin-top: 1.5em; } h4 { font-size: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
th[scope=row], table.config th { text-align: left; font-weight: normal; color: #555; }
table.config td { text-align: left; white-space: normal; }
td.best { background: #e6f4ea; }
.warn { color: #a40; }
#summary h2 { margin-top: 0.6em; }
#summary h3 { font-size: 0.95em; margin: 0.6em 0 0.2em; }
#summary h3 a { color: inherit; text-decoration: none; }
table.answer { font-size: 13px; margin: 0.2em 0; }
table.answer thead th { border-bottom: 1px solid #999; }
table.answer th[scope=row] { color: #222; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em; border-radius: 2px; vertical-align: -0.05em; }
#summary ul.verdicts { font-size: 12.5px; margin: 0.2em 0 0.4em; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1em; }
.chart { position: relative; height: 320px; }
figure { margin: 0.5em 0; } figcaption { font-weight: 600; }
.notes, .problems { color: #555; font-size: 0.9em; }
nav ol { margin: 0.2em 0; } nav ol ol { font-size: 0.9em; }
ul.verdicts { margin: 0.3em 0; padding-left: 1.2em; }
`;

export interface ReportOptions {
  /** Where the HTML goes. */
  readonly outFile: string;
  readonly hgrmDir?: string;
  /** For tests and reproducible output. */
  readonly now?: Date;
  /** Also what a month at a sustained rate costs on each broker, after each group's table (src/report/cost.ts). */
  readonly cost?: CostOptions;
}

export interface ReportOutput {
  /** The file written; undefined when no input could be used. */
  readonly file?: string;
  readonly problems: readonly string[];
  readonly notes: readonly string[];
}

export async function reportFiles(inputs: readonly string[], options: ReportOptions): Promise<ReportOutput> {
  const { runs, problems } = await loadRuns(inputs);
  if (runs.length === 0) return { problems, notes: [] };
  const groups = groupRuns(runs);
  const html = renderHtml(groups, problems, options.now ?? new Date(), options.cost);
  const notes: string[] = [];
  if (options.hgrmDir !== undefined) {
    const written = await writeHgrmFiles(options.hgrmDir, groups);
    notes.push(`wrote ${written.length} .hgrm files (values in ms) to ${options.hgrmDir}`);
  }
  await writeAtomically(options.outFile, html);
  const charts = groups.reduce((n, g) => n + g.columns.reduce((m, c) => m + c.runs.length, 0), 0);
  notes.push(`wrote ${options.outFile}: ${groups.length} group(s), ${charts} run(s)`);
  return { file: options.outFile, problems, notes };
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const dir = path.dirname(file);
  const temporary = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`);
  try {
    await makeFolder(dir);
    await writeFile(temporary, text);
    await rename(temporary, file);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw new UsageError(`cannot write the report to ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'}); choose another path with --out`);
  }
}
