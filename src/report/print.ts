// The summary a run prints on stdout. Returns a string, so tests read it without a terminal.

import { lostOf, type LatencyRecord, type ResultFile } from './result-file.ts';
import { formatBytes, formatCount, formatLatency, formatRate, formatSeconds } from '../format.ts';
import { publishedCount } from '../metrics/ledger.ts';
import { requestSplitOf } from '../metrics/requests.ts';
import { fitTable, terminalWidth, wrap, wrapLines } from './table.ts';
import { costOfRun, renderCostTable, type CostOptions } from './cost.ts';

export interface PrintOptions {
  /** Columns to fit in; tables wider are stacked, prose wrapped. Default: the terminal's, else COLUMNS, else no limit (a pipe keeps lines whole). */
  readonly width?: number;
  /** Also what a month at this sustained rate would cost (src/report/cost.ts), under the summary. */
  readonly cost?: CostOptions;
}

export function printSummary(result: ResultFile, file?: string, options: PrintOptions = {}): string {
  const width = options.width ?? terminalWidth();
  const { broker, config, throughput, ledger, counters, harness } = result;
  const lines: string[] = [];
  lines.push(
    ...wrap(`${result.scenario} on ${broker.name} (${broker.mode}) ${broker.serverVersion} at ${broker.endpoint} [${broker.endpointKind}]: ${result.status}`, width, '', '  '),
  );
  lines.push(
    ...wrap(`${formatCount(config.messages)} messages of ${config.payloadBytes} B, batch ${config.publishBatch}, ` +
      `${config.publishConcurrency} publishers, ${config.consumers} consumers, ${config.queues} queue(s)` +
      (config.ratePerSec > 0 ? `, rate ${formatRate(config.ratePerSec)}` + (config.lingerMs === undefined ? '' : ` (linger ${config.lingerMs} ms)`) : '') +
      (config.task.durationMs > 0 ? `, task ${config.task.durationMs} ms ${config.task.distribution} ${config.task.work}` : ''), width, '', '  '),
  );

  const rates = [
    ['published', formatCount(publishedCount(ledger)), formatRate(throughput.publishPerSec), formatSeconds(throughput.publishSec)],
    ['received', formatCount(ledger.deliveries), formatRate(throughput.receivePerSec), formatSeconds(throughput.receiveSec ?? throughput.totalSec)],
    ['completed', formatCount(ledger.completed), formatRate(throughput.completePerSec), formatSeconds(throughput.totalSec)],
  ];
  lines.push(fitTable(rates, width, { head: ['', 'messages', 'rate', 'over'], stackBy: 'row' }));

  const latency: string[][] = [];
  const row = (name: string, l: LatencyRecord): string[] => [
    name,
    ...[l.p50, l.p90, l.p99, l.p999, l.max, l.mean].map(formatLatency),
    formatCount(l.count),
  ];
  const kinds: [string, LatencyRecord][] = [
    ['end-to-end', result.latency.endToEnd],
    ['publish', result.latency.publish],
    ['execution', result.latency.execution],
    ['completion', result.latency.completion],
    // Under --rate: the wait for a publish batch to leave, part of end-to-end (at most --linger-ms).
    ...(result.latency.batchWait ? [['batch wait', result.latency.batchWait] as [string, LatencyRecord]] : []),
  ];
  for (const [name, record] of kinds) if (name !== 'execution' || record.count > 0) latency.push(row(name, record));
  // A scenario's own histograms (e.g. delayed's lateness) are latencies too: same columns.
  for (const [name, record] of Object.entries(result.scenarioData?.histograms ?? {})) latency.push(row(name, record));
  lines.push(fitTable(latency, width, { head: ['latency', 'p50', 'p90', 'p99', 'p99.9', 'max', 'mean', 'count'], stackBy: 'row' }));

  const books: Record<string, string>[] = [];
  books.push(
    // A run cut short cannot tell lost from not yet delivered (the verdicts say how many were still queued).
    // Dead-lettered messages were never completed but are not lost: the broker holds them (lostOf).
    result.status === 'completed' ? { lost: formatCount(lostOf(result)) } : { 'not completed (run stopped)': formatCount(lostOf(result)) },
    { 'duplicate deliveries': formatCount(ledger.duplicateDeliveries) },
    // Bodies without this run's token (another run's, forged): acked, never booked as deliveries.
    { 'foreign (not this run\'s)': formatCount(ledger.foreign ?? 0) },
    { redeliveries: formatCount(counters.redeliveries) },
    { 'failed tasks (retried)': formatCount(counters.taskFailures) },
    { 'dead-lettered': formatCount(result.finalDepth.dead) },
    { 'publish errors': formatCount(counters.publishErrors) },
    { 'receive / ack errors': `${formatCount(counters.receiveErrors)} / ${formatCount(counters.ackErrors)}` },
    {
      'harness cost':
        `${harness.cpuCores.toFixed(2)} cores, peak RSS ${formatBytes(harness.peakRssBytes)}, event-loop p99 ${harness.eventLoopDelayP99Ms.toFixed(1)} ms` +
        (harness.consumerProcesses
          ? ` (with ${harness.consumerProcesses.processes} consumer processes: CPU summed, peak RSS the sum of each process's peak)`
          : ''),
    },
  );
  if (result.requests) {
    // Per message on the workload's requests only: the harness's own (queues, depth polls) are no cost of the queue.
    const { workload, housekeeping, billedWorkload } = requestSplitOf(result.requests);
    books.push(
      {
        'API requests (workload)': `${formatCount(workload)} (${(workload / Math.max(1, ledger.completed)).toFixed(3)} per message; ${formatCount(billedWorkload)} billed)`,
      },
      { 'API requests (housekeeping)': `${formatCount(housekeeping)} (queues, look-ups, depth polls)` },
    );
  }
  if (result.queueStats && Object.keys(result.queueStats).length > 0) {
    const figures = Object.entries(result.queueStats).map(([name, value]) => `${name} ${formatCount(value)}`);
    books.push({ 'queues after the run': figures.join(', ') });
  }
  lines.push(fitTable(books.flatMap((entry) => Object.entries(entry)), width, { stackBy: 'row' }));
  for (const table of result.scenarioData?.tables ?? []) {
    lines.push(wrapLines(table.title, width), fitTable(table.rows, width, { head: table.head, stackBy: 'row' }));
  }
  // Marked lines wrap under their text, so a verdict reads as one item.
  const marked = (mark: string, text: string): string[] => wrap(text, width, `${mark} `, ' '.repeat(mark.length + 1));
  for (const verdict of result.verdicts) lines.push(...marked('-', verdict));
  for (const [name, record] of kinds) {
    if (record.clamped) lines.push(...marked('!', `${formatCount(record.clamped)} ${name} latencies were outside 1 µs to 1 h and recorded at the bound`));
  }
  for (const error of result.errors) lines.push(...marked('!', `first ${error}`));
  // One line however long: scripts and people find the file by it.
  if (file) lines.push(`result: ${file}`);
  if (options.cost) {
    // Rates of a run cut short say nothing of what the broker sustains.
    lines.push(
      result.status === 'completed'
        ? renderCostTable([costOfRun(result, options.cost)], options.cost, width)
        : `cost: not worked out, the run did not complete (${result.status})`,
    );
  }
  return lines.join('\n');
}
