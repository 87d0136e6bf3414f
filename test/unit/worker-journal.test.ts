// A dead worker's journal read back: its publishes accepted, refused, in doubt and never sent, its
// deliveries, an ack it sent without an answer counted as done, and a record torn by the kill ignored.

import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULTS, type RunConfig } from '../../src/config.ts';
import { describeEnvironment } from '../../src/environment.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import type { SubscriberSink } from '../../src/pipeline/sink.ts';
import { readWorkerJournal, WorkerJournal, type WorkerHeader } from '../../src/runner/worker-journal.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'brokerbench-worker-journal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config: RunConfig = { ...DEFAULTS, adapter: 'redis-list', mode: 'reliable', scenario: 'throughput', messages: 100, consumers: 1, task: NO_TASK } as RunConfig;

function header(): WorkerHeader {
  return {
    runId: 'r1',
    shard: 1,
    shards: 2,
    first: 50,
    end: 100,
    ratePerSec: 0,
    host: 'h',
    pid: 1,
    runToken: '0123456789abcdef',
    config,
    broker: { name: 'redis-list', mode: 'reliable', serverVersion: '7', endpoint: 'redis://x', endpointKind: 'local', capabilities: { delivery: 'at-least-once' } } as WorkerHeader['broker'],
    environment: describeEnvironment(),
    clock: { reference: 'redis TIME', offsetUs: 0, uncertaintyUs: 10, rounds: 16 },
    startedAt: new Date(0).toISOString(),
  };
}

/** A sink that books nothing: the journal is what is tested. */
const nowhere: SubscriberSink = {
  delivered: () => undefined,
  malformed: () => undefined,
  foreign: () => undefined,
  executed: () => undefined,
  completed: () => undefined,
  failed: () => undefined,
  receiveCall: () => undefined,
  error: () => undefined,
};

describe('readWorkerJournal', () => {
  it('books what the worker did up to its death', () => {
    const file = path.join(dir, 'part-1-of-2.journal');
    let now = 1_000_000;
    const journal = new WorkerJournal(file, () => now);
    journal.header(header());
    journal.started(1_000_000);
    journal.sending(50, 10);
    journal.sent(50, 10, 1_000_500);
    journal.sending(60, 10);
    journal.refused(60, 10);
    journal.sending(80, 10); // a batch claimed later went out first (under --rate, claims wait for their time)
    journal.sent(80, 10, 1_001_000);
    journal.sending(70, 5); // sent, no answer: in doubt
    const sink = journal.consumerSink(0, nowhere, () => undefined);
    // One receive of three of the run's messages (one of another worker's), then an ack sent and never answered.
    sink.receiveCall(false);
    sink.deliveredBatch!(1_002_000, [50, 51, 10], [1_000_000, 1_000_000, 999_000], [1, 1, 1]);
    sink.received!();
    now = 1_003_000;
    sink.settling!('ack', [50, 10], 2);
    journal.close();
    appendFileSync(file, 'D 0 1004000 0 0 52 1000000 1'); // torn by the kill: no newline

    const books = readWorkerJournal(file);
    expect(books.header?.runId).toBe('r1');
    expect(books.startUs).toBe(1_000_000);
    expect(books.inDoubt).toEqual([[70, 75]]);
    expect(books.published).toBe(20);
    expect(books.lastPublishUs).toBe(1_001_000);
    const counts = books.books!.ledger.counts();
    // 75..80 and 90..100 never handed to the broker; 60..70 refused; the torn delivery of 52 is not booked.
    expect(counts).toMatchObject({ notSent: 15, publishFailed: 10, deliveries: 3, delivered: 3, completed: 2 });
    expect(books.lastCompletionUs).toBe(1_003_000);
    // Index 10 is another worker's message it consumed (cross host); 50 and 51 its own.
    expect(books.sameHost.totalCount).toBe(2);
    expect(books.crossHost.totalCount).toBe(1);
  });

  it('a worker killed before its header published nothing', () => {
    const file = path.join(dir, 'part-0-of-2.journal');
    appendFileSync(file, '');
    const books = readWorkerJournal(file);
    expect(books.header).toBeUndefined();
    expect(books.books).toBeUndefined();
    expect(books.published).toBe(0);
  });
});
