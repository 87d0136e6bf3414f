// The summary the report opens on: per workload group, the answer (answer.ts) as a table, one row per
// broker with its guarantees, sustained rate, end-to-end p99, losses, requests and cost per million
// messages and any harness-saturation warning, the best cells marked; under it, every run's verdicts
// as text. Kept compact, so that a report of a few workloads shows it whole in the first screen.
//
// LIMITATION: a verdict every run of a broker gave is said once for the broker; one only some runs
// gave names (and links) those runs. Many workloads make the summary longer than one screen.

import { formatCount, formatLatency, formatRate } from '../format.ts';
import { answerFor, type Answer, type AnswerEntry, type AnswerField } from './answer.ts';
import type { Group } from './group.ts';
import { escapeHtml } from './html-kit.ts';


const COLUMNS: readonly { readonly head: string; readonly title?: string; readonly field?: AnswerField; readonly cell: (e: AnswerEntry) => string }[] = [
  { head: 'delivery', cell: (e) => e.delivery },
  { head: 'order', title: 'ordering the broker keeps', cell: (e) => e.ordering },
  { head: 'DLQ', title: 'dead letters', cell: (e) => (e.deadLetters ? 'yes' : 'no') },
  { head: 'delays', cell: (e) => (e.delays ? 'yes' : 'no') },
  {
    head: 'sustained rate',
    title: 'completions per second, median of the runs (min … max when several)',
    field: 'rate',
    cell: (e) => formatRate(e.ratePerSec.median) + (e.ratePerSec.min === e.ratePerSec.max ? '' : ` (${formatCount(Math.round(e.ratePerSec.min))} … ${formatCount(Math.round(e.ratePerSec.max))})`),
  },
  { head: 'e2e p99', title: 'end-to-end p99, histograms of the runs merged', field: 'p99', cell: (e) => (e.p99Us === undefined ? 'n/a' : formatLatency(e.p99Us)) },
  { head: 'lost', field: 'lost', cell: (e) => formatCount(e.lost) },
  { head: 'dup', title: 'duplicate deliveries', field: 'duplicates', cell: (e) => formatCount(e.duplicates) },
  { head: 'req/1M', title: 'billed requests per million messages', field: 'requests', cell: (e) => (e.requestsPerMillion === undefined ? 'n/a' : formatCount(Math.round(e.requestsPerMillion))) },
  { head: '$/1M', title: 'request cost per million messages', field: 'cost', cell: (e) => (e.usdPerMillion === undefined ? 'n/a' : `$${e.usdPerMillion.toFixed(2)}`) },
];

/** Where the summary links to: a group's comparison, and a run (by its result file's name) in that group. */
export interface SummaryLinks {
  readonly group: (g: number) => string;
  readonly run: (g: number, file: string) => string | undefined;
}

function answerTable(answer: Answer, colours: Readonly<Record<string, string>>): string {
  const head =
    '<tr><th>broker</th>' +
    COLUMNS.map((c) => `<th${c.title === undefined ? '' : ` title="${escapeHtml(c.title)}"`}>${escapeHtml(c.head)}</th>`).join('') +
    '<th title="whether the harness itself was the limit">harness</th></tr>';
  const rows = answer.entries.map((entry) => {
    const swatch = `<span class="swatch" style="background: ${escapeHtml(colours[entry.label] ?? '#777')}"></span>`;
    const cells = COLUMNS.map((c) => {
      const best = c.field !== undefined && entry.best.includes(c.field);
      return best ? `<td class="best"><strong>${escapeHtml(c.cell(entry))}</strong></td>` : `<td>${escapeHtml(c.cell(entry))}</td>`;
    });
    const harness =
      entry.saturation === undefined
        ? '<td>ok</td>'
        : `<td class="warn" title="${escapeHtml(`${entry.saturation}: these figures are a floor, the broker may be faster than shown`)}">⚠ saturated</td>`;
    return `<tr><th scope="row">${swatch}${escapeHtml(entry.label)}</th>${cells.join('')}${harness}</tr>`;
  });
  return `<table class="answer"><thead>${head}</thead><tbody>${rows.join('')}</tbody></table>`;
}

/** Per broker one line: any saturation warning, then its verdicts, each said once when every run gave it. */
function verdictLines(answer: Answer, runLink: (file: string) => string | undefined): string[] {
  return answer.entries.flatMap((entry) => {
    const runs = [...new Set(entry.verdicts.map((v) => v.run))];
    const texts = [...new Set(entry.verdicts.map((v) => v.text))];
    const parts = texts.map((text) => {
      const saidBy = runs.filter((run) => entry.verdicts.some((v) => v.run === run && v.text === text));
      if (saidBy.length === runs.length) return escapeHtml(text);
      const named = saidBy.map((run) => {
        const href = runLink(run);
        return href === undefined ? escapeHtml(run) : `<a href="${escapeHtml(href)}">${escapeHtml(run)}</a>`;
      });
      return `${escapeHtml(text)} (${named.join(', ')})`;
    });
    const all = runs.length > 1 ? ` (${runs.length} runs)` : '';
    if (entry.saturation !== undefined) {
      parts.unshift(`<span class="warn">⚠ harness saturated (${escapeHtml(entry.saturation)}): these figures are a floor</span>`);
    }
    return parts.length === 0 ? [] : [`<li><b>${escapeHtml(entry.label)}</b>${all}: ${parts.join(' · ')}</li>`];
  });
}

/** The summary section: every group's answer and verdicts. */
export function summaryHtml(groups: readonly Group[], colours: Readonly<Record<string, string>>, links: SummaryLinks): string {
  const answers = groups.map((group, g) => {
    const answer = answerFor(group);
    const lines = verdictLines(answer, (file) => links.run(g, file));
    return (
      `<div class="answer" id="answer-${g}"><h3><a href="${links.group(g)}">${escapeHtml(answer.title)}</a></h3>` +
      `${answerTable(answer, colours)}${lines.length === 0 ? '' : `<ul class="verdicts">${lines.join('')}</ul>`}</div>`
    );
  });
  return `<section id="summary"><h2>Summary</h2>\n${answers.join('\n')}\n</section>`;
}
