// The journal of a consumer process, written and read back in one process: what a reader books from
// a file a writer left behind, including a torn last record and acks that were never answered.

import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SubscriberSink } from '../../src/pipeline/sink.ts';
import { JournalReader, JournalWriter } from '../../src/runner/journal.ts';

/** A sink that lists what it was told. */
function recordingSink() {
  const booked = { delivered: [] as number[], completed: [] as number[], failed: 0, malformed: 0, foreign: 0, receiveCalls: 0, errors: [] as string[] };
  const sink: SubscriberSink = {
    delivered: (index) => void booked.delivered.push(index),
    malformed: () => void booked.malformed++,
    foreign: () => void booked.foreign++,
    executed: () => undefined,
    completed: (index) => void booked.completed.push(index),
    failed: (count) => void (booked.failed += count),
    receiveCall: () => void booked.receiveCalls++,
    error: (operation, message) => void booked.errors.push(`${operation}: ${message}`),
  };
  return { sink, booked };
}

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function journalFile(): string {
  dir = mkdtempSync(path.join(tmpdir(), 'journal-test-'));
  const file = path.join(dir, 'j');
  writeFileSync(file, '');
  return file;
}

describe('journal', () => {
  it('books deliveries before any ack, completions on an answered ack, and an unanswered ack as completed at the end', () => {
    const file = journalFile();
    let now = 1_000;
    const writer = new JournalWriter(file, () => now++);
    const sink = writer.sink(0);
    // Batch 1: indices 1, 2 and a body not ours; acked and answered.
    sink.receiveCall(false);
    sink.delivered(1, 10, 100, 1);
    sink.delivered(2, 11, 100, 1);
    sink.malformed();
    sink.received?.();
    const reader = new JournalReader(file, 1);
    const { sink: parent, booked } = recordingSink();
    reader.start(parent);
    expect(booked.delivered).toEqual([1, 2]);
    expect(reader.inHand).toBe(3);
    const first = sink.settling!('ack', [1, 2], 3);
    sink.settled!(first, true, 200);
    // Batch 2: index 3 acked, the ack never answered; index 4 held; index 5 nacked, unanswered.
    sink.receiveCall(false);
    sink.delivered(3, 12, 300, 1);
    sink.delivered(4, 13, 300, 1);
    sink.delivered(5, 14, 300, 2);
    sink.received?.();
    sink.settling!('ack', [3], 1);
    sink.settling!('nack', [5], 1);
    writer.close();
    reader.poll();
    expect(booked.completed).toEqual([1, 2]);
    expect(reader.inHand).toBe(3);
    const state = reader.end();
    expect(booked.completed).toEqual([1, 2, 3]);
    expect(booked.failed).toBe(1);
    expect(booked.malformed).toBe(1);
    expect(state.held).toEqual([4, 300]);
    expect(state.acking).toEqual([3]);
    expect(state.nacking).toEqual([5]);
    expect(reader.unansweredAcks).toBe(1);
    expect(state.activity).toEqual({ receiving: 0, executing: 0, acking: 0, nacking: 1 });
  });

  it('ignores a torn last record, and books a record written in two pieces once it is whole', () => {
    const file = journalFile();
    const reader = new JournalReader(file, 1);
    const { sink, booked } = recordingSink();
    reader.start(sink);
    appendFileSync(file, 'D 0 100 0 0 1 10 1 2 1');
    reader.poll();
    expect(booked.delivered).toEqual([]);
    appendFileSync(file, '0 1\nD 0 200 0 0 3 10 1\nA 0 1 1 250 1\nO 0 1 1 260\nD 0 300 0 0 7 1');
    const state = reader.end();
    // Index 7's delivery was torn by the kill: never booked, and so not held either.
    expect(booked.delivered).toEqual([1, 2, 3]);
    expect(booked.completed).toEqual([1]);
    expect(state.held).toEqual([2, 100, 3, 200]);
  });

  it('an ack that settled part of its messages completes those alone; foreign bodies are counted apart', () => {
    const file = journalFile();
    const writer = new JournalWriter(file, () => 5);
    const sink = writer.sink(0);
    sink.receiveCall(false);
    sink.foreign();
    sink.malformed();
    for (const index of [1, 2, 3]) sink.delivered(index, 1, 2, 1);
    sink.received?.();
    const id = sink.settling!('ack', [1, 2, 3], 5);
    sink.settled!(id, true, 6, [1, 3]);
    writer.close();
    const reader = new JournalReader(file, 2);
    const { sink: parent, booked } = recordingSink();
    reader.start(parent);
    reader.end();
    expect(booked.delivered).toEqual([1, 2, 3]);
    expect(booked.completed).toEqual([1, 3]);
    expect(booked.foreign).toBe(1);
    expect(booked.malformed).toBe(1);
  });

  it('a failed ack completes nothing and leaves the hand', () => {
    const file = journalFile();
    const writer = new JournalWriter(file, () => 5);
    const sink = writer.sink(1);
    sink.receiveCall(false);
    sink.delivered(9, 1, 2, 1);
    sink.received?.();
    const id = sink.settling!('ack', [9], 1);
    sink.settled!(id, false, 6);
    sink.error('ack', 'connection\nreset');
    writer.close();
    const reader = new JournalReader(file, 2);
    const { sink: parent, booked } = recordingSink();
    reader.start(parent);
    const state = reader.end();
    expect(booked.completed).toEqual([]);
    expect(booked.errors).toEqual(['ack: connection reset']);
    expect(state.held).toEqual([]);
    expect(reader.inHand).toBe(0);
    expect(state.activity).toEqual({ receiving: 2, executing: 0, acking: 0, nacking: 0 });
  });
});
