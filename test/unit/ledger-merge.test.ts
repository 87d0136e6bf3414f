// The merge of many workers' ledgers: a message delivered by two workers is one duplicate, a killed
// publisher's unanswered indices are in doubt only while nobody saw them, and lost is exact.

import { describe, expect, it } from 'vitest';
import { Ledger, mergeLedgers, publishedCount, type LedgerPart } from '../../src/metrics/ledger.ts';

/** A worker owning [first, end) of `expected` messages, with the ledger its consumers booked. */
function part(expected: number, first: number, end: number, book: (ledger: Ledger) => void, inDoubt: [number, number][] = []): LedgerPart {
  const ledger = new Ledger(expected);
  book(ledger);
  return { ledger: ledger.state(), first, end, inDoubt };
}

const done = (ledger: Ledger, indices: Iterable<number>): void => {
  for (const i of indices) {
    ledger.markDelivered(i);
    ledger.markCompleted(i);
  }
};
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k);

describe('mergeLedgers', () => {
  it('two workers that each completed the other half balance to nothing lost and no duplicate', () => {
    const { counts, missing } = mergeLedgers([part(100, 0, 50, (l) => done(l, range(50, 100))), part(100, 50, 100, (l) => done(l, range(0, 50)))]);
    expect(counts).toMatchObject({ expected: 100, delivered: 100, deliveries: 100, duplicateDeliveries: 0, completed: 100, duplicateCompletions: 0, lost: 0, inDoubt: 0 });
    expect(missing).toEqual([]);
  });

  it('a message delivered by two workers counts once as delivered and once as a duplicate; one delivered twice within a worker too', () => {
    const a = part(10, 0, 5, (l) => {
      done(l, range(0, 10));
      l.markDelivered(3); // a redelivery within worker a
    });
    const b = part(10, 5, 10, (l) => {
      l.markDelivered(7); // delivered to b as well, never completed there (its holder died, say)
      l.markDelivered(8);
      l.markCompleted(8); // completed by both: a duplicate completion
    });
    const { counts } = mergeLedgers([a, b]);
    expect(counts.delivered).toBe(10);
    expect(counts.deliveries).toBe(13);
    expect(counts.duplicateDeliveries).toBe(3);
    expect(counts.completed).toBe(10);
    expect(counts.duplicateCompletions).toBe(1);
    expect(counts.lost).toBe(0);
  });

  it('lost is exact: published by its owner, completed by nobody; refused and never-sent indices are not lost', () => {
    const a = part(20, 0, 10, (l) => {
      done(l, range(0, 6));
      l.markPublishFailed(6);
      l.markNotSent(9, 10);
    });
    const b = part(20, 10, 20, (l) => done(l, range(10, 20)));
    const { counts, missing } = mergeLedgers([a, b]);
    expect(counts).toMatchObject({ publishFailed: 1, notSent: 1, completed: 16, lost: 2 });
    expect(missing).toEqual([7, 8]);
    expect(publishedCount(counts)).toBe(18);
  });

  it('publish facts count only within the owner\'s range: another worker cannot declare an index it does not own refused', () => {
    const a = part(10, 0, 5, (l) => {
      done(l, range(0, 10));
      l.markPublishFailed(7); // not a's to say
    });
    const b = part(10, 5, 10, () => undefined);
    expect(mergeLedgers([a, b]).counts).toMatchObject({ publishFailed: 0, lost: 0, completed: 10 });
  });

  it('a killed publisher: its unanswered indices are in doubt if never seen, delivered if seen, lost if seen and never completed', () => {
    // Worker b owned 10..20, had 10..14 confirmed, 14..18 sent without an answer, 18..20 never claimed.
    const a = part(20, 0, 10, (l) => {
      done(l, range(0, 10));
      done(l, range(10, 14));
      done(l, [14]); // in doubt, but it turned up and completed
      l.markDelivered(15); // in doubt, seen, never completed: it was published, so it is lost
    });
    const b = part(
      20,
      10,
      20,
      (l) => {
        l.markNotSent(18, 20);
      },
      [[14, 18]],
    );
    const { counts, missing, deliveredNotCompleted } = mergeLedgers([a, b]);
    expect(counts).toMatchObject({ expected: 20, notSent: 2, inDoubt: 2, completed: 15, lost: 1, publishFailed: 0 });
    expect(deliveredNotCompleted).toEqual([1, 0]);
    expect(missing).toEqual([15]);
    expect(publishedCount(counts)).toBe(16);
  });

  it('foreign and unknown bodies add up over the workers', () => {
    const a = part(4, 0, 2, (l) => {
      done(l, [0, 1, 2, 3]);
      l.markForeign();
      l.markUnknown();
    });
    const b = part(4, 2, 4, (l) => l.markForeign());
    expect(mergeLedgers([a, b]).counts).toMatchObject({ foreign: 2, unknown: 1, lost: 0 });
  });

  it('refuses ledgers of different runs, and ranges that overlap or leave a gap', () => {
    expect(() => mergeLedgers([part(10, 0, 5, () => undefined), part(12, 5, 10, () => undefined)])).toThrow(/not of one run/);
    expect(() => mergeLedgers([part(10, 0, 6, () => undefined), part(10, 5, 10, () => undefined)])).toThrow(/do not tile/);
    expect(() => mergeLedgers([part(10, 0, 4, () => undefined), part(10, 5, 10, () => undefined)])).toThrow(/do not tile/);
    expect(() => mergeLedgers([part(10, 0, 5, () => undefined)])).toThrow(/end at 5/);
  });

  it('a bitset that does not decode to the run\'s size is refused', () => {
    const good = part(64, 0, 64, (l) => done(l, range(0, 64)));
    const short = { ...good, ledger: { ...good.ledger, completed: new Ledger(32).state().completed } };
    expect(() => mergeLedgers([short])).toThrow(/holds 4 bytes, not 8/);
    expect(() => mergeLedgers([{ ...good, ledger: { ...good.ledger, delivered: 'not deflate' } }])).toThrow(/does not decode/);
  });

  it('a million messages all completed encode to a few hundred bytes', () => {
    const ledger = new Ledger(1_000_000);
    done(ledger, range(0, 1_000_000));
    const state = ledger.state();
    expect(state.completed.length).toBeLessThan(2_000);
    const { counts } = mergeLedgers([{ ledger: state, first: 0, end: 1_000_000, inDoubt: [] }]);
    expect(counts).toMatchObject({ completed: 1_000_000, lost: 0, duplicateDeliveries: 0 });
  });
});
