// crash-recovery's books of the victim's messages: a message it held counts as back however early its
// redelivery is booked, even before the victim's own journal has been read to the end (RabbitMQ gives a
// dead consumer's messages back within milliseconds of its connection closing).

import { describe, expect, it } from 'vitest';
import { RecoveryTracker } from '../../scenarios/crash-recovery.ts';

describe('RecoveryTracker', () => {
  it('counts a held message redelivered after arm() as back, with its delay', () => {
    const tracker = new RecoveryTracker(10);
    tracker.killing();
    tracker.arm([3, 100, 4, 110]);
    tracker.delivered(3, 900, 2);
    expect(tracker).toMatchObject({ held: 2, redelivered: 1, otherRedeliveries: 0, lastRedeliveryUs: 900 });
    expect(tracker.neverBack().count).toBe(1);
  });

  it('counts a held message whose redelivery was booked between the kill and arm() as back, not as another redelivery', () => {
    const tracker = new RecoveryTracker(10);
    tracker.delivered(7, 50, 1);
    tracker.killing();
    tracker.delivered(3, 400, 2); // the victim's, back before its journal was read
    tracker.delivered(8, 410, 2); // someone else's redelivery
    tracker.arm([3, 100, 4, 110]);
    expect(tracker).toMatchObject({ held: 2, redelivered: 1, otherRedeliveries: 1, lastRedeliveryUs: 400 });
    tracker.delivered(4, 600, 2);
    expect(tracker).toMatchObject({ redelivered: 2, otherRedeliveries: 1, lastRedeliveryUs: 600 });
    expect(tracker.neverBack().count).toBe(0);
  });

  it('counts a held message as back when the victim itself received it after the kill began and it came back before arm()', () => {
    // A random kill comes a while after killing(): the victim's own delivery of 5 is booked first, then its redelivery.
    const tracker = new RecoveryTracker(10);
    tracker.killing();
    tracker.delivered(5, 200, 1); // to the victim, in the delay before the kill
    tracker.delivered(5, 450, 2); // given back when its connection closed, before its journal was read
    tracker.arm([5, 200]);
    expect(tracker).toMatchObject({ held: 1, redelivered: 1, otherRedeliveries: 0, lastRedeliveryUs: 450 });
    expect(tracker.neverBack().count).toBe(0);
  });
});
