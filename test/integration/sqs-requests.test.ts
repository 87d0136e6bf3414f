// A real SQS run (the embedded endpoint) keeps the workload's requests apart from the harness's own
// housekeeping: sends, receives and deletes per message in the shape the batching gives, and the
// queue's creation, its removal and every depth poll counted as housekeeping, not as cost per message.

import { describe, expect, it } from 'vitest';
import { sqsAdapter } from '../../adapters/sqs.ts';
import { splitRequestCounts } from '../../src/metrics/requests.ts';
import { printSummary } from '../../src/report/print.ts';
import { buildResult } from '../../src/report/result-file.ts';
import { runScenario } from '../../src/runner/runner.ts';
import { findScenario } from '../../scenarios/index.ts';
import { scenarioRunner } from '../helpers/scenarios.ts';
import { useSqsEndpoint } from '../helpers/sqs.ts';

const endpoint = useSqsEndpoint();
const { connection, configFor } = scenarioRunner(endpoint);

describe('sqs request counts', () => {
  it('splits counts by action into workload and housekeeping', () => {
    const split = splitRequestCounts({ SendMessageBatch: 10, ReceiveMessage: 12, DeleteMessageBatch: 10, GetQueueAttributes: 4, CreateQueue: 1 });
    expect(split).toEqual({
      workload: { SendMessageBatch: 10, ReceiveMessage: 12, DeleteMessageBatch: 10 },
      housekeeping: { GetQueueAttributes: 4, CreateQueue: 1 },
      workloadTotal: 32,
      housekeepingTotal: 5,
    });
  });

  it('a run records its workload and its housekeeping apart, depth polls among the housekeeping', async () => {
    const scenario = findScenario('throughput')!;
    const config = configFor(scenario, 'sqs', { messages: 500, consumers: 2 });
    expect(config.publishBatch).toBe(10);
    let ticks = 0;
    const record = await runScenario({
      adapter: sqsAdapter,
      connection: connection('sqs'),
      config,
      scenario,
      onEvent: (event) => {
        if (event.type === 'tick') ticks++;
      },
    });
    const result = buildResult(record);
    expect(result.status).toBe('completed');
    expect(result.ledger.completed).toBe(500);
    const requests = result.requests!;
    const byKind = requests.byKind;
    // Workload: one SendMessageBatch per 10 messages, at least one DeleteMessageBatch per 10, and the receives.
    expect(byKind['SendMessageBatch']).toBe(50);
    expect(byKind['DeleteMessageBatch']).toBeGreaterThanOrEqual(50);
    expect(byKind['ReceiveMessage']).toBeGreaterThanOrEqual(50);
    expect(requests.workload).toBe(byKind['SendMessageBatch']! + byKind['DeleteMessageBatch']! + byKind['ReceiveMessage']!);
    const perMessage = requests.workload! / result.ledger.completed;
    expect(perMessage).toBeGreaterThanOrEqual(0.3);
    expect(perMessage).toBeLessThan(0.6);
    // Housekeeping: opening, creating and deleting the queue, and one GetQueueAttributes per depth poll:
    // one per progress tick and the final sample, so at least one even when the run ends before its first tick.
    expect(byKind['GetQueueAttributes']).toBeGreaterThanOrEqual(ticks + 1);
    expect(byKind['CreateQueue']).toBe(1);
    expect(byKind['DeleteQueue']).toBe(1);
    expect(requests.housekeeping).toBe(requests.total - requests.workload!);
    expect(requests.housekeeping).toBeGreaterThanOrEqual(ticks + 3);
    // Small bodies: every workload request is billed once; housekeeping is not priced per message.
    expect(requests.billedWorkload).toBe(requests.workload);
    expect(requests.billed).toBe(requests.total);
    const summary = printSummary(result, undefined, { width: 400 });
    expect(summary).toMatch(new RegExp(`API requests \\(workload\\)\\s*│ ${requests.workload} \\(${perMessage.toFixed(3)} per message; ${requests.workload} billed\\)`));
    expect(summary).toMatch(new RegExp(`API requests \\(housekeeping\\)\\s*│ ${requests.housekeeping} `));
  });
});
