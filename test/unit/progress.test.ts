// The progress bar on a terminal: cleared when it stops (a Ctrl-C, the end of the run), and never
// drawn again over the lines and the summary that follow. Both displays show an ETA and, in a run of
// several steps, the step, each counted against its own total (a real two-rate fixed-rate run on Redis).

import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { redisListAdapter } from '../../adapters/redis-list.ts';
import { DEFAULTS, type RunConfig } from '../../src/config.ts';
import type { RunProgress } from '../../src/outcome.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import { createProgress, etaOf, NO_ETA, stepOf } from '../../src/report/progress.ts';
import { runScenario, type RunnerEvent } from '../../src/runner/runner.ts';
import { findScenario } from '../../scenarios/index.ts';
import { redisUrl } from '../helpers/redis.ts';

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

/** A stream that is not a terminal (a CI log) and keeps what was written. */
function log(): { stream: NodeJS.WriteStream; written: () => string } {
  const { stream, written } = terminal();
  Object.assign(stream, { isTTY: false });
  return { stream, written };
}

const at = (change: Partial<RunProgress>): RunProgress => ({
  phase: 'run', elapsedMs: 0, expected: 1000, published: 0, completed: 0, publishFailed: 0, completeRatePerSec: 0, depth: 0, ...change,
});

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

describe('the ETA', () => {
  it('is what remains at the rate completed so far, and a dash until it can be told', () => {
    expect(etaOf(at({ elapsedMs: 5000, completed: 0 }))).toBe(NO_ETA);
    expect(etaOf(at({ elapsedMs: 500, completed: 100 }))).toBe(NO_ETA);
    // 100 in 2 s is 50/s; 900 to go is 18 s.
    expect(etaOf(at({ elapsedMs: 2000, completed: 100 }))).toBe('18s');
    expect(etaOf(at({ elapsedMs: 10_000, completed: 4_900, expected: 500_000 }))).toBe('16m 50s');
    expect(etaOf(at({ elapsedMs: 1000, completed: 1, expected: 100_000 }))).toBe('27h 46m');
    expect(etaOf(at({ elapsedMs: 3000, completed: 1000 }))).toBe('0s');
  });

  it('is on the bar and on the log line, with the counts formatted alike', () => {
    const bar = terminal();
    const barDisplay = createProgress(bar.stream);
    barDisplay.onEvent({ type: 'tick', progress: at({ elapsedMs: 10_000, completed: 4_900, expected: 500_000 }) });
    expect(bar.written()).toContain('completed 4,900/500,000 | ETA 16m 50s');
    barDisplay.stop();
    const line = log();
    const lineDisplay = createProgress(line.stream);
    lineDisplay.onEvent({ type: 'tick', progress: at({ elapsedMs: 10_000, completed: 4_900, expected: 500_000, completeRatePerSec: 490 }) });
    expect(line.written()).toBe('run 10s: completed 4,900/500,000, ETA 16m 50s (490/s), published 0, depth 0\n');
  });
});

describe('a run of several steps', () => {
  const step = (index: number, label: string): RunProgress['step'] => ({ index, count: 2, label });

  it('labels each tick with its step, on the bar and the log line', () => {
    expect(stepOf(at({}))).toBe('');
    expect(stepOf(at({ step: step(1, 'rate 3,000/s') }))).toBe('rate 3,000/s (2/2) ');
    const line = log();
    const display = createProgress(line.stream);
    display.onEvent({ type: 'tick', progress: at({ elapsedMs: 6000, completed: 600, expected: 600, step: step(0, 'rate 100/s') }) });
    // The second step's clock starts again: its first tick is shown at once, not after the first step's 6 s.
    display.onEvent({ type: 'tick', progress: at({ elapsedMs: 1000, completed: 200, expected: 3000, step: step(1, 'rate 3,000/s') }) });
    expect(line.written().split('\n')[1]).toBe('rate 3,000/s (2/2) run 1s: completed 200/3,000, ETA 14s (0/s), published 0, depth 0');
  });

  it('counts the bar against the step\'s own total when a step starts', () => {
    const bar = terminal();
    const display = createProgress(bar.stream);
    display.onEvent({ type: 'tick', progress: at({ elapsedMs: 2000, completed: 300, expected: 300, step: step(0, 'rate 100/s') }) });
    display.onEvent({ type: 'tick', progress: at({ elapsedMs: 2000, completed: 1500, expected: 3000, step: step(1, 'rate 1,000/s') }) });
    // The bar redraws at most a few times a second; its stop draws the last state before clearing it.
    display.stop();
    expect(bar.written()).toContain('rate 1,000/s (2/2) run [');
    expect(bar.written()).toMatch(/\] 50% \| completed 1,500\/3,000 \| ETA 2s/);
  });

  it('fixed-rate on Redis at two rates: every tick names its rate, and completed never passes that rate\'s expected count', async () => {
    const scenario = findScenario('fixed-rate')!;
    const capabilities = redisListAdapter.capabilities('reliable');
    const base: RunConfig = {
      ...DEFAULTS,
      ...scenario.defaults,
      adapter: redisListAdapter.name,
      mode: 'reliable',
      scenario: scenario.name,
      receiveWaitMs: 200,
      timeoutMs: 60_000,
      ratesPerSec: [200, 400],
      durationSec: 1,
      warmupSec: 0,
      task: NO_TASK,
    };
    const config = scenario.configure!(base, capabilities);
    const ticks: RunProgress[] = [];
    const line = log();
    const display = createProgress(line.stream);
    await runScenario({
      adapter: redisListAdapter,
      connection: { url: redisUrl(), commandTimeoutMs: 3_000 },
      config,
      scenario,
      onEvent: (event: RunnerEvent) => {
        if (event.type === 'tick') ticks.push(event.progress);
        display.onEvent(event);
      },
    });
    display.stop();
    const labels = [...new Set(ticks.map((p) => `${p.step?.index}/${p.step?.count} ${p.step?.label} of ${p.expected}`))];
    expect(labels).toEqual(['0/2 rate 200/s of 200', '1/2 rate 400/s of 400']);
    for (const p of ticks) expect(p.completed, stepOf(p)).toBeLessThanOrEqual(p.expected);
    // The last tick of the second rate counts that rate's own messages, not both rates'.
    expect(ticks.at(-1)!.completed).toBeLessThanOrEqual(400);
    expect(line.written()).toMatch(/^rate 200\/s \(1\/2\) run \d+s: completed [\d,]+\/200, ETA /m);
    expect(line.written()).toMatch(/^rate 400\/s \(2\/2\) run \d+s: completed [\d,]+\/400, ETA /m);
    expect(line.written()).toContain('run: fixed-rate: 600 messages');
  }, 60_000);
});
