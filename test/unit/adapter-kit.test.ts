// The adapter kit's guarantees, checked once for every adapter: the in-memory driver, behind a log of
// the calls that reach it, is made an adapter with small declared limits, and each promise of the kit
// is held to: a closed handle refuses everything, limits refuse before the driver is called, empty
// batches never reach it, every error leaves as a BrokerError, close runs once, waits are bounded.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { defineAdapter, backoffMs, SettingsReader, TimeoutError, withTimeout, type Driver, type ServerInfo } from '../../adapters/kit/index.ts';
import { MemoryDriver, memoryAdapter } from '../../adapters/memory.ts';
import {
  BrokerError,
  hasQueueStats,
  isMemoryReporting,
  isRequestCounting,
  PartialSettleError,
  type Broker,
  type BrokerCapabilities,
  type OutgoingMessage,
  type QueueDepth,
  type QueueSpec,
  type ReceivedMessage,
  type ReceiveOptions,
} from '../../src/broker.ts';
import { uniqueNamespace } from '../helpers/fixture.ts';

const ADAPTER = 'kit-test';
const LIMITED: BrokerCapabilities = {
  ...memoryAdapter.capabilities('default'),
  maxBatchSize: 3,
  maxPayloadBytes: 16,
  maxDelayMs: 5_000,
  maxNackDelayMs: 8_000,
};
/** A mode with neither delays nor nack delays, as redis-list simple or sqs fifo. */
const UNDELAYED: BrokerCapabilities = { ...LIMITED, delay: false, maxDelayMs: 0, nackDelay: false, maxNackDelayMs: undefined };

/** The memory driver, recording every call that reaches it and failing an operation on demand. */
class LoggedDriver implements Driver {
  constructor(
    readonly inner: Driver,
    readonly calls: string[],
    readonly failures: Map<string, unknown>,
  ) {}

  async #reach<T>(operation: string, call: () => Promise<T>): Promise<T> {
    this.calls.push(operation);
    if (this.failures.has(operation)) throw this.failures.get(operation);
    return call();
  }

  describe(): Promise<ServerInfo> {
    return this.#reach('describe', () => this.inner.describe());
  }
  prepare(spec: QueueSpec): Promise<void> {
    return this.#reach('prepare', () => this.inner.prepare(spec));
  }
  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    return this.#reach('publish', () => this.inner.publish(queue, messages));
  }
  receive(queue: string, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    return this.#reach('receive', () => this.inner.receive(queue, options));
  }
  ack(queue: string, messages: readonly ReceivedMessage[]): Promise<void> {
    return this.#reach('ack', () => this.inner.ack(queue, messages));
  }
  nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    return this.#reach('nack', () => this.inner.nack(queue, messages, retryDelayMs));
  }
  depth(queue: string): Promise<QueueDepth> {
    return this.#reach('depth', () => this.inner.depth(queue));
  }
  purge(queue: string): Promise<void> {
    return this.#reach('purge', () => this.inner.purge(queue));
  }
  teardown(queue: string): Promise<void> {
    return this.#reach('teardown', () => this.inner.teardown(queue));
  }
  duplicate(): Promise<Driver> {
    return this.#reach('duplicate', async () => new LoggedDriver(await this.inner.duplicate(), this.calls, this.failures));
  }
  close(): Promise<void> {
    return this.#reach('close', () => this.inner.close());
  }
}

/** What one test opened, closed afterwards. */
const opened: Broker[] = [];
afterEach(async () => {
  for (const broker of opened.splice(0)) await broker.teardown('q').catch(() => undefined);
  vi.useRealTimers();
});

/** A kit adapter over the logged memory driver, opened in `mode` with queue `q` prepared; the log starts empty. */
async function open(mode = 'limited', extras: Partial<Driver> = {}) {
  const calls: string[] = [];
  const failures = new Map<string, unknown>();
  const adapter = defineAdapter({
    name: ADAPTER,
    aliases: [],
    modes: { limited: LIMITED, undelayed: UNDELAYED },
    defaultMode: 'limited',
    limits: { owner: 'the test broker', noDelay: 'undelayed mode cannot delay messages' },
    connect: async (options) => Object.assign(new LoggedDriver(new MemoryDriver(options.namespace), calls, failures), extras),
  });
  const broker = await adapter.open({ namespace: uniqueNamespace(), mode, commandTimeoutMs: 1_000 });
  opened.push(broker);
  await broker.prepare({ name: 'q', visibilityTimeoutMs: 30_000, maxReceives: 0 });
  calls.length = 0;
  return { adapter, broker, calls, failures };
}

/** The rejection of `promise`, which must reject. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable('expected a rejection'),
    (error: unknown) => error,
  );
}

/** A BrokerError of the test adapter for `operation`, in one line; returns its message after "adapter operation: ". */
async function refused(promise: Promise<unknown>, operation: string): Promise<string> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(BrokerError);
  const { adapter, operation: named, message } = error as BrokerError;
  expect({ adapter, operation: named }).toEqual({ adapter: ADAPTER, operation });
  expect(message).not.toContain('\n');
  expect(message.startsWith(`${ADAPTER} ${operation}: `)).toBe(true);
  return message.slice(`${ADAPTER} ${operation}: `.length);
}

const message: ReceivedMessage = { body: 'x', receiveCount: 1, receipt: '1' };

describe('a closed handle', () => {
  it('refuses every operation with a BrokerError naming the adapter and the operation, and the driver hears nothing', async () => {
    const { broker, calls } = await open();
    await broker.close();
    calls.length = 0;
    const operations: [string, () => Promise<unknown>][] = [
      ['describe', () => broker.describe()],
      ['prepare', () => broker.prepare({ name: 'other', visibilityTimeoutMs: 1_000, maxReceives: 0 })],
      ['publish', () => broker.publish('q', [{ body: 'x' }])],
      ['publish', () => broker.publish('q', [])],
      ['receive', () => broker.receive('q', { maxMessages: 1, waitMs: 0 })],
      ['ack', () => broker.ack('q', [message])],
      ['ack', () => broker.ack('q', [])],
      ['nack', () => broker.nack('q', [message], 0)],
      ['depth', () => broker.depth('q')],
      ['purge', () => broker.purge('q')],
      ['teardown', () => broker.teardown('q')],
      ['duplicate', () => broker.duplicate()],
    ];
    for (const [operation, call] of operations) expect(await refused(call(), operation)).toBe('handle is closed');
    expect(calls).toEqual([]);
  });
});

describe('close', () => {
  it('runs the driver close once, however often and however concurrently it is called', async () => {
    const { broker, calls } = await open();
    await Promise.all([broker.close(), broker.close()]);
    await broker.close();
    expect(calls).toEqual(['close']);
  });

  it('ends a blocked receive with [], also when the driver rejects the wait as its connection is cut', async () => {
    const { broker } = await open();
    const receiving = broker.receive('q', { maxMessages: 1, waitMs: 60_000 });
    await broker.close();
    expect(await receiving).toEqual([]);
    // A client whose wait fails as its connection is cut (ioredis, the AWS SDK) gives the same.
    let cut: (() => void) | undefined;
    const other = await open('limited', {
      receive: () => new Promise<never>((_, reject) => (cut = () => reject(new Error('Connection is closed.')))),
      close: async () => cut?.(),
    });
    const waiting = other.broker.receive('q', { maxMessages: 1, waitMs: 60_000 });
    await other.broker.close();
    expect(await waiting).toEqual([]);
  });

  it('closing one handle leaves its duplicate open, and the duplicate is held to the kit as well', async () => {
    const { broker } = await open();
    const copy = await broker.duplicate();
    opened.push(copy);
    await broker.close();
    await copy.publish('q', [{ body: 'kept' }]);
    expect((await copy.receive('q', { maxMessages: 3, waitMs: 0 })).map((m) => m.body)).toEqual(['kept']);
    expect(await refused(copy.publish('q', [{ body: 'x'.repeat(17) }]), 'publish')).toMatch(/^queue q: message of 17 bytes over/);
    await copy.close();
    expect(await refused(copy.depth('q'), 'depth')).toBe('handle is closed');
  });
});

describe('limits from the declared capabilities', () => {
  it('refuses a batch over maxBatchSize, a body over maxPayloadBytes (UTF-8) and a delay over maxDelayMs, writing nothing', async () => {
    const { broker, calls } = await open();
    const cases: [OutgoingMessage[], string][] = [
      [[{ body: 'a' }, { body: 'b' }, { body: 'c' }, { body: 'd' }], 'queue q: batch of 4 messages over the test broker maximum of 3 per call'],
      // 9 characters, 17 bytes: a limit counted in characters would let it through.
      [[{ body: 'ok' }, { body: 'é'.repeat(8) + 'x' }], 'queue q: message of 17 bytes over the test broker maximum of 16 bytes'],
      [[{ body: 'ok' }, { body: 'late', delayMs: 5_001 }], 'queue q: delay of 5001 ms over the test broker maximum of 5 s'],
      [[{ body: 'odd', delayMs: -1 }], 'queue q: delayMs must be a number of 0 or more, got -1'],
    ];
    for (const [messages, sentence] of cases) expect(await refused(broker.publish('q', messages), 'publish')).toBe(sentence);
    expect(calls).toEqual([]);
    // At the limits exactly, all is taken.
    await broker.publish('q', [{ body: 'é'.repeat(8) }, { body: 'y', delayMs: 5_000 }, { body: 'z', delayMs: 0 }]);
    expect(calls).toEqual(['publish']);
    expect(await broker.depth('q')).toEqual({ ready: 2, inFlight: 0, delayed: 1, dead: 0 });
  });

  it('refuses any delay in a mode without delays, in the words the entry gives', async () => {
    const { broker, calls } = await open('undelayed');
    expect(await refused(broker.publish('q', [{ body: 'x', delayMs: 1 }]), 'publish')).toBe('queue q: undelayed mode cannot delay messages');
    expect(calls).toEqual([]);
  });

  it('refuses a nack delay over maxNackDelayMs, and ignores one where nack delays are not declared', async () => {
    const limited = await open();
    expect(await refused(limited.broker.nack('q', [message], 8_001), 'nack')).toBe('queue q: retry delay of 8001 ms over the test broker maximum of 8 s');
    expect(await refused(limited.broker.nack('q', [message], Number.NaN), 'nack')).toBe('queue q: retryDelayMs must be a number of 0 or more, got NaN');
    await limited.broker.nack('q', [message], 8_000);
    expect(limited.calls).toEqual(['nack']);
    const undelayed = await open('undelayed');
    await undelayed.broker.nack('q', [message], 60_000);
    expect(undelayed.calls).toEqual(['nack']);
  });

  it('refuses a receive of 0, a fraction or more than maxBatchSize, and a negative wait', async () => {
    const { broker, calls } = await open();
    for (const maxMessages of [0, 1.5, 4]) {
      expect(await refused(broker.receive('q', { maxMessages, waitMs: 0 }), 'receive')).toBe(`queue q: maxMessages must be a whole number from 1 to 3, got ${maxMessages}`);
    }
    expect(await refused(broker.receive('q', { maxMessages: 1, waitMs: -1 }), 'receive')).toBe('queue q: waitMs must be a number of 0 or more, got -1');
    expect(calls).toEqual([]);
  });

  it('refuses a queue spec no broker can honour', async () => {
    const { broker, calls } = await open();
    expect(await refused(broker.prepare({ name: '', visibilityTimeoutMs: 1_000, maxReceives: 0 }), 'prepare')).toBe('the queue name is empty');
    expect(await refused(broker.prepare({ name: 'p', visibilityTimeoutMs: 0, maxReceives: 0 }), 'prepare')).toBe('visibilityTimeoutMs must be a number of ms over 0, got 0');
    expect(await refused(broker.prepare({ name: 'p', visibilityTimeoutMs: 1_000, maxReceives: -1 }), 'prepare')).toBe('maxReceives must be a whole number of 0 or more, got -1');
    expect(calls).toEqual([]);
  });

  it('takes a publish of any length from an entry that splits it itself', async () => {
    const adapter = defineAdapter({
      name: ADAPTER, aliases: [], modes: { limited: LIMITED }, defaultMode: 'limited', limits: { splitsPublish: true },
      connect: async (options) => new MemoryDriver(options.namespace),
    });
    const broker = await adapter.open({ namespace: uniqueNamespace(), commandTimeoutMs: 1_000 });
    opened.push(broker);
    await broker.publish('q', Array.from({ length: 7 }, (_, i) => ({ body: `m${i}` })));
    expect((await broker.depth('q')).ready).toBe(7);
    // Its own words by default: the adapter's name.
    expect(await refused(broker.publish('q', [{ body: 'x'.repeat(17) }]), 'publish')).toBe(`queue q: message of 17 bytes over ${ADAPTER}'s maximum of 16 bytes`);
  });
});

describe('empty batches', () => {
  it('publish, ack and nack of nothing resolve without reaching the driver', async () => {
    const { broker, calls } = await open();
    await broker.publish('q', []);
    await broker.ack('q', []);
    // Even with a delay past any limit: there is nothing to delay.
    await broker.nack('q', [], 10 ** 9);
    expect(calls).toEqual([]);
  });
});

describe('errors', () => {
  it('wraps what a driver throws as a BrokerError of the adapter and the operation, in one line', async () => {
    const { broker, failures } = await open();
    failures.set('publish', new Error('socket hang up\n    at somewhere (client.js:1:1)'));
    failures.set('depth', 'a bare string');
    expect(await refused(broker.publish('q', [{ body: 'x' }]), 'publish')).toBe('socket hang up');
    expect(await refused(broker.depth('q'), 'depth')).toBe('a bare string');
    const error = await rejection(broker.publish('q', [{ body: 'x' }]));
    expect((error as BrokerError).cause).toBe(failures.get('publish'));
  });

  it('tells errors in the words of the driver explain()', async () => {
    const { broker, failures } = await open('limited', { explain: (error: unknown) => `explained: ${(error as Error).message}` });
    failures.set('purge', new Error('ECONNRESET'));
    expect(await refused(broker.purge('q'), 'purge')).toBe('explained: ECONNRESET');
  });

  it('leaves a BrokerError and a PartialSettleError as they are', async () => {
    const { broker, failures } = await open();
    const own = new BrokerError(ADAPTER, 'connect', 'its own words');
    const partial = new PartialSettleError(ADAPTER, 'ack', '1 of 2 failed', [message]);
    failures.set('describe', own);
    failures.set('ack', partial);
    expect(await rejection(broker.describe())).toBe(own);
    expect(await rejection(broker.ack('q', [message, message]))).toBe(partial);
  });

  it('refuses an unknown mode, naming the modes there are; open errors name the adapter', async () => {
    const { adapter } = await open();
    expect(() => adapter.capabilities('bogus')).toThrow(new BrokerError(ADAPTER, 'capabilities', 'unknown mode "bogus": use limited or undelayed'));
    expect(adapter.capabilities('LIMITED')).toBe(LIMITED);
    expect(await refused(adapter.open({ namespace: 'n', mode: 'bogus', commandTimeoutMs: 1_000 }), 'open')).toBe('unknown mode "bogus": use limited or undelayed');
    expect(await refused(adapter.open({ namespace: 'n', commandTimeoutMs: 0 }), 'open')).toBe('commandTimeoutMs must be a number of ms over 0, got 0');
    expect(await refused(adapter.open({ namespace: '', commandTimeoutMs: 1_000 }), 'open')).toBe('the namespace is empty');
  });
});

describe('describe and the optional extensions', () => {
  it('describe() adds the adapter name and mode to what the driver reports', async () => {
    const { broker } = await open('undelayed');
    expect(await broker.describe()).toEqual({ name: ADAPTER, mode: 'undelayed', serverVersion: `node-${process.versions.node}`, endpoint: 'this process', endpointKind: 'embedded' });
  });

  it('a handle has an extension only when its driver does, checked and wrapped alike', async () => {
    expect(isMemoryReporting((await open()).broker)).toBe(false);
    expect(hasQueueStats((await open()).broker)).toBe(false);
    const extras: Partial<Driver> = {
      queueStats: async (queue) => ({ [`deadTuplesOf${queue}`]: 3 }),
      serverMemory: async () => ({ usedBytes: 1, maxBytes: 0, policy: 'noeviction' }),
      queueMemoryBytes: async () => {
        throw new Error('MEMORY USAGE refused');
      },
      requestCounts: () => ({ SendMessageBatch: 2 }),
      billedRequests: () => 2,
    };
    const { broker } = await open('limited', extras);
    expect(isMemoryReporting(broker) && isRequestCounting(broker)).toBe(true);
    if (!isMemoryReporting(broker) || !isRequestCounting(broker)) return;
    expect(await broker.serverMemory()).toEqual({ usedBytes: 1, maxBytes: 0, policy: 'noeviction' });
    expect(hasQueueStats(broker) && (await broker.queueStats('Q'))).toEqual({ deadTuplesOfQ: 3 });
    expect(await refused(broker.queueMemoryBytes('q'), 'memory')).toBe('MEMORY USAGE refused');
    await broker.close();
    expect(await refused(broker.serverMemory(), 'memory')).toBe('handle is closed');
    // Counts stay readable after close: a run reads them when its handles are done.
    expect(broker.requestCounts()).toEqual({ SendMessageBatch: 2 });
  });
});

describe('bounded waits and back-off', () => {
  it('withTimeout rejects with a TimeoutError once the time is up, and aborts what the work started', async () => {
    vi.useFakeTimers();
    let signal: AbortSignal | undefined;
    const waiting = withTimeout(2_000, 'connect', (given) => {
      signal = given;
      return new Promise<never>(() => undefined);
    });
    const outcome = rejection(waiting);
    await vi.advanceTimersByTimeAsync(1_999);
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toBe('connect timed out: no answer within 2000 ms');
    expect(signal?.aborted).toBe(true);
  });

  it('withTimeout settles as the work does when it is in time, and leaves no timer behind', async () => {
    vi.useFakeTimers();
    expect(await withTimeout(1_000, 'describe', async () => 'answer')).toBe('answer');
    await expect(withTimeout(1_000, 'describe', async () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('backoffMs doubles from its base up to its cap', () => {
    expect([1, 2, 3, 4, 5].map((attempt) => backoffMs(attempt, 100, 1_000))).toEqual([100, 200, 400, 800, 1_000]);
    expect(backoffMs(4, 50)).toBe(400);
  });
});

describe('settings', () => {
  it('reads numbers, booleans and the endpoint kind from strings or values, refusing the rest by name', () => {
    const settings = new SettingsReader(ADAPTER, { groups: '4', deleteOnAck: 'false', endpointKind: 'docker', bad: 'lots', empty: '' });
    expect(settings.number('groups', { min: 1, integer: true })).toBe(4);
    expect(settings.number('empty')).toBeUndefined();
    expect(settings.boolean('deleteOnAck', true)).toBe(false);
    expect(settings.boolean('missing', true)).toBe(true);
    expect(settings.endpointKind('local')).toBe('docker');
    expect(new SettingsReader(ADAPTER, undefined).endpointKind('aws')).toBe('aws');
    expect(() => settings.number('bad', { min: 1, integer: true })).toThrow(
      new BrokerError(ADAPTER, 'open', 'setting bad must be a whole number of at least 1, got lots'),
    );
    expect(() => settings.boolean('bad', true)).toThrow('setting bad must be true or false, got lots');
    expect(() => new SettingsReader(ADAPTER, { endpointKind: 'cloud' }).endpointKind('local')).toThrow(/setting endpointKind must be one of local, embedded/);
  });
});
