import { describe, expect, it } from 'vitest';
import type { BrokerCapabilities } from '../../src/broker.ts';
import { DEFAULTS, validateConfig, type RunConfig } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';

const capabilities: BrokerCapabilities = {
  delivery: 'at-least-once',
  delay: true,
  maxDelayMs: 900_000,
  deadLetter: false,
  visibilityTimeout: true,
  nackDelay: true,
  ordering: 'none',
  maxBatchSize: 10,
  maxPayloadBytes: 262_144,
  sharedAcrossProcesses: true,
};

const base: RunConfig = {
  ...DEFAULTS,
  adapter: 'sqs',
  mode: 'standard',
  scenario: 'throughput',
  publishBatch: 10,
  receiveBatch: 10,
  task: NO_TASK,
};

function problem(change: Partial<RunConfig>): string {
  try {
    validateConfig({ ...base, ...change }, capabilities);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  return 'valid';
}

describe('validateConfig', () => {
  it('accepts the defaults within the broker limits', () => {
    expect(problem({})).toBe('valid');
  });

  it('names the flag and the value for counts that are not positive integers', () => {
    expect(problem({ messages: 0 })).toBe('messages must be a positive integer, got 0');
    expect(problem({ messages: 1.5 })).toMatch(/^messages must be a positive integer/);
    expect(problem({ consumers: -1 })).toMatch(/^--consumers must be a positive integer, got -1/);
    expect(problem({ ratePerSec: Number.NaN })).toMatch(/^--rate must be a number/);
  });

  it('holds batch and payload sizes to the broker limits', () => {
    expect(problem({ publishBatch: 11 })).toBe("--batch 11 is over sqs's limit of 10 messages per call");
    expect(problem({ receiveBatch: 50 })).toMatch(/--receive-batch 50 is over/);
    expect(problem({ payloadBytes: 300_000 })).toMatch(/maximum message size of 262144 bytes/);
  });

  it('refuses features the broker does not declare', () => {
    expect(problem({ maxReceives: 3 })).toMatch(/needs dead letters/);
  });

  it('holds the retry delay to the longest nack delay the broker honours', () => {
    expect(problem({ retryDelayMs: 900_000 })).toBe('valid');
    expect(problem({ retryDelayMs: 900_001 })).toBe("--retry-delay-ms 900001 is over sqs's longest retry delay of 900000 ms");
    const longerNacks = { ...capabilities, maxNackDelayMs: 43_200_000 };
    expect(() => validateConfig({ ...base, retryDelayMs: 43_200_000 }, longerNacks)).not.toThrow();
    // A broker without nack delays ignores the value: nothing to hold it to.
    expect(() => validateConfig({ ...base, retryDelayMs: 3_600_000 }, { ...capabilities, nackDelay: false })).not.toThrow();
  });

  it('checks consistency between flags', () => {
    expect(problem({ queues: 4, consumers: 2 })).toMatch(/every queue needs a consumer/);
    expect(problem({ warmupMessages: base.messages })).toMatch(/leaves no measured message/);
    expect(problem({ task: { ...NO_TASK, failureRate: 1.5 } })).toMatch(/--fail-rate must be between 0 and 1/);
    expect(problem({ channel: 'bad name!' })).toMatch(/CHANNEL_NAME/);
  });
});
