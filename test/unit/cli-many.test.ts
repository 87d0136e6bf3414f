// The QUEUE list of a multi-broker run: names and aliases, NAME:MODE, `all`, and one line for what
// is not a broker; and how runMany's exit code reads the runs' ends (without running any broker).

import { describe, expect, it } from 'vitest';
import { adapters } from '../../adapters/index.ts';
import { choiceLabel, isBrokerList, parseBrokerList, runMany, type ManyDeps, type RunEnd } from '../../src/cli-many.ts';
import { DEFAULTS } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { findScenario } from '../../scenarios/index.ts';

describe('the QUEUE list', () => {
  it('tells one broker from several', () => {
    expect(isBrokerList('REDIS')).toBe(false);
    expect(isBrokerList('REDIS:simple')).toBe(false);
    expect(isBrokerList('REDIS,SQS')).toBe(true);
    expect(isBrokerList(' ALL ')).toBe(true);
  });

  it('reads names, aliases and NAME:MODE, each in its default mode unless given', () => {
    expect(parseBrokerList('REDIS, redis:simple ,SQS:fifo,stream').map(choiceLabel)).toEqual([
      'redis-list reliable',
      'redis-list simple',
      'sqs fifo',
      'redis-stream group',
    ]);
  });

  it('reads all as every registry entry in its default mode', () => {
    expect(parseBrokerList('all').map(choiceLabel)).toEqual(adapters.map((a) => `${a.name} ${a.defaultMode}`));
  });

  it.each([
    ['REDIS,NOPE', /^unknown QUEUE "NOPE"; use one of: /],
    ['REDIS,SQS:lifo', /^sqs has no mode "lifo"; use one of: standard, fifo/],
    ['REDIS,', /^QUEUE entry "" is not a broker; write NAME or NAME:MODE/],
    ['REDIS,SQS:fifo:x', /^QUEUE entry "SQS:fifo:x" is not a broker/],
    ['REDIS,redis-list:reliable', /^QUEUE names redis-list reliable twice/],
  ])('refuses %s in one line', (queue, message) => {
    expect(() => parseBrokerList(queue)).toThrow(UsageError);
    expect(() => parseBrokerList(queue)).toThrow(message);
  });
});

describe('runMany', () => {
  /** Deps whose runs end as `ends` says, by label; records what was planned and printed. */
  function fakeDeps(ends: Record<string, RunEnd>, scenarioName = 'throughput') {
    const lines: string[] = [];
    const planned: { label: string; batchLimit: number; channel: string }[] = [];
    const deps: ManyDeps = {
      scenario: findScenario(scenarioName)!,
      channel: 'bench',
      resultsDir: '/nonexistent',
      ready: async () => undefined,
      plan: (choice, batchLimit, channel) => {
        planned.push({ label: choiceLabel(choice), batchLimit, channel });
        return { choice, config: { ...DEFAULTS, publishBatch: Math.min(100, batchLimit), receiveBatch: Math.min(100, batchLimit) } as never };
      },
      run: async (plan) => ends[choiceLabel(plan.choice)]!,
      interrupted: () => false,
      out: (text) => lines.push(text),
      err: (text) => lines.push(text),
    };
    return { deps, lines, planned };
  }

  it('exits 1 when a broker is skipped, naming it with the reason; plans every broker with the smallest limit on a queue of its own', async () => {
    const { deps, lines, planned } = fakeDeps({ 'memory default': { status: 'skipped', reason: 'no server' }, 'sqs standard': { status: 'skipped', reason: 'no server' } });
    expect(await runMany(parseBrokerList('memory,SQS'), deps)).toBe(1);
    expect(planned).toEqual([
      { label: 'memory default', batchLimit: 10, channel: 'bench-1' },
      { label: 'sqs standard', batchLimit: 10, channel: 'bench-2' },
    ]);
    expect(lines).toContain('every broker gets --batch 10, --receive-batch 10 (sqs standard takes at most 10 per call)');
    expect(lines).toContain('  memory default: skipped: no server');
  });

  it('skips a broker that lacks what the scenario needs without planning or running it', async () => {
    const { deps, lines, planned } = fakeDeps({ 'memory default': { status: 'skipped', reason: 'no server' } }, 'delayed');
    expect(await runMany(parseBrokerList('REDIS:simple,memory'), deps)).toBe(1);
    expect(planned.map((p) => p.label)).toEqual(['memory default']);
    expect(lines[0]).toBe('redis-list simple: skipped: scenario delayed needs delay, which it does not support');
  });

  it('skips a broker whose queues consumer processes cannot reach when the scenario runs its consumers in processes', async () => {
    const { deps, lines, planned } = fakeDeps({ 'redis-list reliable': { status: 'skipped', reason: 'no server' } }, 'crash-recovery');
    expect(await runMany(parseBrokerList('memory,REDIS'), deps)).toBe(1);
    expect(planned.map((p) => p.label)).toEqual(['redis-list reliable']);
    expect(lines[0]).toBe('memory default: skipped: scenario crash-recovery needs sharedAcrossProcesses, which it does not support');
  });

  it('exits 1 when a run timed out, though it wrote a result', async () => {
    const { deps } = fakeDeps({ 'memory default': { status: 'skipped', reason: 'x' }, 'redis-list reliable': { status: 'timeout' } });
    expect(await runMany(parseBrokerList('memory,REDIS'), deps)).toBe(1);
  });
});
