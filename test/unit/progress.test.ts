// The progress bar on a terminal: cleared when it stops (a Ctrl-C, the end of the run), and never
// drawn again over the lines and the summary that follow.

import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress } from '../../src/report/progress.ts';
import type { RunProgress } from '../../src/outcome.ts';

/** A stream that says it is a terminal and keeps what was written. */
function terminal(): { stream: NodeJS.WriteStream; written: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY: true, columns: 120, rows: 40 });
  return { stream, written: () => text };
}

const tick = (completed: number): { type: 'tick'; progress: RunProgress } => ({
  type: 'tick',
  progress: { phase: 'run', elapsedMs: completed, expected: 100, published: 100, completed, publishFailed: 0, completeRatePerSec: 10, depth: 100 - completed },
});

describe('the progress bar', () => {
  it('is cleared on stop and draws nothing after it', () => {
    const { stream, written } = terminal();
    const progress = createProgress(stream);
    progress.onEvent({ type: 'phase', phase: 'run', detail: 'throughput: 100 messages' });
    progress.onEvent(tick(10));
    expect(written()).toContain('completed 10/100');
    progress.stop();
    const atStop = written();
    // The last thing written erases the bar's line (ESC [2K, after moving to its start).
    expect(atStop.slice(atStop.lastIndexOf('completed 10/100'))).toMatch(/\u001b\[2K$/);
    progress.onEvent(tick(50));
    progress.onEvent({ type: 'phase', phase: 'teardown', detail: 'removing 1 queue(s)' });
    progress.stop();
    expect(written()).toBe(atStop);
  });
});
