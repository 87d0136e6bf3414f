// `report`: one self-contained HTML file from result files. Chart.js is inlined from node_modules and a
// Content-Security-Policy forbids any fetch, so the page opens offline and the same everywhere.
// Per workload group: the comparison table, and latency by percentile (HdrHistogram plotter's view:
// x from 0 to 99.999 on a log scale of 1/(1-p)) for each merged column; per run: throughput and queue
// depth over time, and the run's configuration.
//
// LIMITATION: the timeline has one-second resolution, so runs shorter than a few seconds draw as a
// few points; latency curves stop where a histogram runs out of samples (past 1 - 1/count).

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Histogram } from 'hdr-histogram-js';
import { UsageError } from '../errors.ts';
import { makeFolder } from './result-file.ts';
import { NOTES, renderRows } from './compare.ts';
import { groupRuns, type Column, type Group } from './group.ts';
import { writeHgrmFiles } from './hgrm.ts';
import { coarsen } from '../metrics/timeline.ts';
import { loadRuns, type LatencyKind, type LoadedRun } from './load.ts';
import { pricingNote } from './pricing.ts';

const KIND_TITLE: Readonly<Record<LatencyKind, string>> = {
  endToEnd: 'End-to-end latency (send to receipt by a consumer)',
  publish: 'Publish latency (call to broker acknowledgement)',
  execution: 'Execution latency (task)',
  completion: 'Completion latency (send to ack after the task)',
};
const CHARTED_KINDS: readonly LatencyKind[] = ['endToEnd', 'publish', 'execution'];

/** Steps per decade of 1/(1-p): 20 gives a smooth curve at ~100 points per series. */
const STEPS_PER_DECADE = 20;
const MAX_DECADES = 5; // 99.999%
/** Most points a timeline chart draws: 100 ms buckets for runs up to 20 s, wider ones beyond. */
const TIMELINE_POINTS = 200;

interface PercentileChart {
  readonly id: string;
  readonly title: string;
  /** Points are [1/(1-p), latency in ms]. */
  readonly series: readonly { readonly label: string; readonly points: readonly (readonly [number, number])[] }[];
}

interface TimelineChart {
  readonly id: string;
  readonly title: string;
  readonly seconds: readonly number[];
  readonly published: readonly number[];
  readonly received: readonly number[];
  readonly completed: readonly number[];
  /** Null where a second had no depth sample; absent when no second had one. */
  readonly depth?: readonly (number | null)[];
}

/**
 * Latency at percentiles evenly spaced on a log scale of 1/(1-p), from p = 0 to 99.999 or as far as
 * the histogram's count reaches, ending at its max. Values in ms.
 */
export function percentileCurve(histogramUs: Histogram): [number, number][] {
  const count = histogramUs.totalCount;
  if (count === 0) return [];
  const decades = Math.min(MAX_DECADES, Math.log10(count));
  const points: [number, number][] = [];
  for (let step = 0; step / STEPS_PER_DECADE <= decades; step++) {
    const x = 10 ** (step / STEPS_PER_DECADE);
    points.push([x, histogramUs.getValueAtPercentile(100 * (1 - 1 / x)) / 1000]);
  }
  const lastX = 10 ** decades;
  if (points.at(-1)![0] < lastX) points.push([lastX, histogramUs.getValueAtPercentile(100) / 1000]);
  else points[points.length - 1] = [lastX, histogramUs.getValueAtPercentile(100) / 1000];
  return points;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The Chart.js UMD build, read from node_modules (its package exports do not list it, so resolve beside the main file). */
function chartJsSource(): string {
  const require = createRequire(import.meta.url);
  const main = require.resolve('chart.js');
  const umd = path.join(path.dirname(main), 'chart.umd.min.js');
  return readFileSync(umd, 'utf8').replace(/<\/script/gi, '<\\/script');
}

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
  rows.push(['verdicts', result.verdicts.join('; ') || '-']);
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

function timelineOf(run: LoadedRun, id: string, title: string): TimelineChart {
  const { bucketMs, points } = coarsen(run.result.timeline, TIMELINE_POINTS);
  const hasDepth = points.some((p) => p.depth !== undefined);
  const perSec = (count: number): number => (count * 1000) / bucketMs;
  return {
    id,
    title,
    seconds: points.map((p) => p.startMs / 1000),
    published: points.map((p) => perSec(p.published)),
    received: points.map((p) => perSec(p.received)),
    completed: points.map((p) => perSec(p.completed)),
    ...(hasDepth ? { depth: points.map((p) => p.depth ?? null) } : {}),
  };
}

const canvas = (id: string, title: string): string =>
  `<figure><figcaption>${escapeHtml(title)}</figcaption><div class="chart"><canvas id="${id}" role="img" aria-label="${escapeHtml(title)}"></canvas></div></figure>`;

export function renderHtml(groups: readonly Group[], problems: readonly string[], generatedAt: Date): string {
  const percentileCharts: PercentileChart[] = [];
  const timelineCharts: TimelineChart[] = [];
  const sections: string[] = [];
  groups.forEach((group, g) => {
    const charts: string[] = [];
    const extraNames = [...new Set(group.columns.flatMap((c) => Object.keys(c.extraHistograms)))].sort();
    const charted: [string, string, (c: Column) => Histogram | undefined][] = [
      ...CHARTED_KINDS.map((kind): [string, string, (c: Column) => Histogram | undefined] => [kind, KIND_TITLE[kind], (c) => c.histograms[kind]]),
      ...extraNames.map((name, k): [string, string, (c: Column) => Histogram | undefined] => [`x${k}`, `Scenario latency: ${name}`, (c) => c.extraHistograms[name]]),
    ];
    for (const [key, title, pick] of charted) {
      const series = group.columns
        .filter((c) => (pick(c)?.totalCount ?? 0) > 0)
        .map((c) => ({ label: `${c.label} (${c.runs.length} run${c.runs.length === 1 ? '' : 's'})`, points: percentileCurve(pick(c)!) }));
      if (series.length === 0) continue;
      const id = `g${g}-${key}`;
      percentileCharts.push({ id, title, series });
      charts.push(canvas(id, `${title} by percentile, merged over each column's runs`));
    }
    const runs: string[] = [];
    group.columns.forEach((column, c) => {
      column.runs.forEach((run, r) => {
        const id = `g${g}-c${c}-r${r}`;
        const title = `${column.label}: ${run.result.startedAt} (run ${run.result.runId})`;
        timelineCharts.push(timelineOf(run, id, title));
        runs.push(
          `<section class="run"><h3>${escapeHtml(title)}</h3>${canvas(id, 'Messages per second and queue depth over time')}` +
            `${scenarioTablesHtml(run)}<details><summary>Configuration</summary>${configHtml(run)}</details></section>`,
        );
      });
    });
    sections.push(
      `<section class="group"><h2>${escapeHtml(group.title)}</h2>${tableHtml(group)}\n` +
        `<div class="charts">${charts.join('\n')}</div>\n<h3>Runs</h3>\n${runs.join('\n')}</section>`,
    );
  });
  const data = JSON.stringify({ percentileCharts, timelineCharts }).replace(/</g, '\\u003c');
  const problemList =
    problems.length === 0
      ? ''
      : `<section class="problems"><h2>Files left out</h2><ul>${problems.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul></section>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>brokerbench report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; } h3 { font-size: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
th[scope=row], table.config th { text-align: left; font-weight: normal; color: #555; }
table.config td { text-align: left; white-space: normal; }
td.best { background: #e6f4ea; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1em; }
.chart { position: relative; height: 320px; }
figure { margin: 0.5em 0; } figcaption { font-weight: 600; }
.notes, .problems { color: #555; font-size: 0.9em; }
</style>
</head>
<body>
<h1>brokerbench report</h1>
<p class="notes">Generated ${escapeHtml(generatedAt.toISOString())} from ${groups.reduce((n, g) => n + g.columns.reduce((m, c) => m + c.runs.length, 0), 0)} result files.
Best value in each row highlighted. ${escapeHtml(NOTES.join(' '))}<br>${escapeHtml(pricingNote())}</p>
<label><input type="checkbox" id="log-y" checked> logarithmic latency axis</label>
${problemList}
${sections.join('\n')}
<script type="application/json" id="report-data">${data}</script>
<script>${chartJsSource()}</script>
<script>${CLIENT_SCRIPT}</script>
</body>
</html>
`;
}

// Runs in the page: draws every chart from #report-data. Plain ES2017, no imports.
const CLIENT_SCRIPT = `
'use strict';
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  Chart.defaults.animation = false;
  // 1/(1-p) = 10^k is labelled with its percentile: 1 -> 0%, 10 -> 90%, 1000 -> 99.9%.
  function percentileLabel(x) {
    var k = Math.log10(x);
    if (Math.abs(k - Math.round(k)) > 1e-9) return '';
    k = Math.round(k);
    return k === 0 ? '0%' : (100 - 100 / x).toFixed(Math.max(0, k - 2)) + '%';
  }
  var latencyCharts = [];
  data.percentileCharts.forEach(function (spec) {
    latencyCharts.push(new Chart(document.getElementById(spec.id), {
      type: 'line',
      data: {
        datasets: spec.series.map(function (s, i) {
          return {
            label: s.label,
            data: s.points.map(function (p) { return { x: p[0], y: p[1] }; }),
            borderColor: palette[i % palette.length],
            backgroundColor: palette[i % palette.length],
            borderWidth: 2, pointRadius: 0, tension: 0
          };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: 'nearest', intersect: false },
        scales: {
          x: { type: 'logarithmic', min: 1, max: 100000, title: { display: true, text: 'percentile' },
               ticks: { autoSkip: false, maxRotation: 0, callback: function (v) { return percentileLabel(v); } } },
          y: { type: 'logarithmic', title: { display: true, text: 'latency (ms)' } }
        },
        plugins: { tooltip: { callbacks: {
          title: function (items) { return 'p' + (100 - 100 / items[0].parsed.x).toFixed(3); },
          label: function (item) { return item.dataset.label + ': ' + item.parsed.y.toPrecision(4) + ' ms'; }
        } } }
      }
    }));
  });
  document.getElementById('log-y').addEventListener('change', function (event) {
    latencyCharts.forEach(function (chart) {
      chart.options.scales.y.type = event.target.checked ? 'logarithmic' : 'linear';
      chart.update();
    });
  });
  data.timelineCharts.forEach(function (spec) {
    var line = function (label, values, color, axis, dash) {
      return { label: label, data: values, borderColor: color, backgroundColor: color, yAxisID: axis,
               borderWidth: 2, pointRadius: values.length < 30 ? 3 : 0, borderDash: dash || [], spanGaps: true };
    };
    var datasets = [
      line('published/s', spec.published, palette[0], 'y'),
      line('received/s', spec.received, palette[1], 'y'),
      line('completed/s', spec.completed, palette[2], 'y')
    ];
    if (spec.depth) datasets.push(line('queue depth', spec.depth, palette[7], 'y1', [6, 3]));
    new Chart(document.getElementById(spec.id), {
      type: 'line',
      data: { labels: spec.seconds, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: 'index', intersect: false },
        scales: {
          x: { title: { display: true, text: 'seconds since the first publish' } },
          y: { beginAtZero: true, title: { display: true, text: 'messages per second' } },
          y1: { display: !!spec.depth, position: 'right', beginAtZero: true, grid: { drawOnChartArea: false },
                title: { display: true, text: 'queue depth (messages)' } }
        }
      }
    });
  });
  document.body.dataset.chartsDrawn = String(Object.keys(Chart.instances).length);
})();
`;

export interface ReportOptions {
  /** Where the HTML goes. */
  readonly outFile: string;
  readonly hgrmDir?: string;
  /** For tests and reproducible output. */
  readonly now?: Date;
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
  const html = renderHtml(groups, problems, options.now ?? new Date());
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
