import { describe, expect, it } from 'vitest';
import { Executor, NO_TASK, seededRandom } from '../../src/pipeline/executor.ts';

describe('Executor', () => {
  it('is trivial with no duration and no failures', () => {
    expect(new Executor(NO_TASK).trivial).toBe(true);
    expect(new Executor({ ...NO_TASK, failureRate: 0.1 }).trivial).toBe(false);
  });

  it('draws durations with the configured mean', () => {
    const mean = (distribution: 'fixed' | 'uniform' | 'exponential'): number => {
      const executor = new Executor({ ...NO_TASK, durationMs: 10, distribution }, seededRandom(7));
      let sum = 0;
      for (let k = 0; k < 20_000; k++) sum += executor.sampleDurationMs();
      return sum / 20_000;
    };
    expect(mean('fixed')).toBe(10);
    expect(mean('uniform')).toBeCloseTo(10, 0);
    expect(mean('exponential')).toBeGreaterThan(9.5);
    expect(mean('exponential')).toBeLessThan(10.5);
  });

  it('fails about failureRate of tasks, reproducibly for one seed', async () => {
    const run = async (): Promise<number> => {
      const executor = new Executor({ ...NO_TASK, failureRate: 0.25 }, seededRandom(42));
      let failures = 0;
      for (let k = 0; k < 4000; k++) if (!(await executor.run())) failures++;
      return failures;
    };
    const first = await run();
    expect(first / 4000).toBeGreaterThan(0.22);
    expect(first / 4000).toBeLessThan(0.28);
    expect(await run()).toBe(first);
  });

  it('sleeps for the task duration', async () => {
    const executor = new Executor({ ...NO_TASK, durationMs: 30 });
    const started = performance.now();
    expect(await executor.run()).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(28);
  });
});
