// What every broker fixture in the tests shares: a fresh namespace, one prepared queue, extra handles,
// and a cleanup that tears the queue down and closes every handle, safe to call twice.

import { randomUUID } from 'node:crypto';
import type { Broker, QueueSpec } from '../../src/broker.ts';

/** A key prefix or queue-name prefix no other test or program uses (short: SQS names stop at 80 characters). */
export function uniqueNamespace(): string {
  return `bb-test-${randomUUID().slice(0, 8)}`;
}

/** An open handle with queue `q` prepared on it, plus everything a test needs to clean up after it. */
export interface QueueFixture {
  readonly broker: Broker;
  readonly namespace: string;
  readonly queue: string;
  readonly spec: QueueSpec;
  /** Extra handles (from `broker.duplicate()`) to close on cleanup. */
  readonly others: Broker[];
  /** Tears the queue down and closes every handle. Safe to call twice. */
  cleanup(): Promise<void>;
}

/** Prepares queue `q` on `broker` (opened on `namespace`); if that fails, closes the handle and rethrows. */
export async function prepareQueueFixture(
  broker: Broker,
  namespace: string,
  spec: Partial<Omit<QueueSpec, 'name'>> = {},
): Promise<QueueFixture> {
  const queue = 'q';
  const full: QueueSpec = { name: queue, visibilityTimeoutMs: spec.visibilityTimeoutMs ?? 30_000, maxReceives: spec.maxReceives ?? 0 };
  const others: Broker[] = [];
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await Promise.all(others.map((other) => other.close().catch(() => undefined)));
    await broker.teardown(queue).catch(() => undefined);
    await broker.close().catch(() => undefined);
  };
  try {
    await broker.prepare(full);
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { broker, namespace, queue, spec: full, others, cleanup };
}
