// Shared helpers for tests that talk to a real SQS endpoint (the embedded fauxqs unless SQS_ENDPOINT
// says otherwise): one endpoint per test file, fresh namespaces, and handles that are always cleaned up.

import { randomUUID } from 'node:crypto';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll } from 'vitest';
import type { Broker, QueueSpec } from '../../src/broker.ts';
import { resolveSqs, type SqsEndpoint } from '../../src/services/sqs-endpoint.ts';
import { sqsAdapter } from '../../adapters/sqs.ts';

/** A queue-name prefix no other test or program uses (short: SQS names stop at 80 characters). */
export function uniqueNamespace(): string {
  return `bb-test-${randomUUID().slice(0, 8)}`;
}

/**
 * Starts (or finds) the SQS endpoint in beforeAll and stops it in afterAll, printing which one is used.
 * Returns a getter, valid inside tests.
 */
export function useSqsEndpoint(): () => SqsEndpoint {
  let endpoint: SqsEndpoint | undefined;
  beforeAll(async () => {
    endpoint = await resolveSqs({ SQS_ENDPOINT: process.env['SQS_ENDPOINT'], AWS_REGION: process.env['AWS_REGION'] });
    console.log(`SQS endpoint: ${endpoint.endpoint ?? 'AWS default'} (${endpoint.kind}, ${endpoint.version}, ${endpoint.region})`);
  });
  afterAll(async () => {
    await endpoint?.stop();
  });
  return () => {
    if (endpoint === undefined) throw new Error('the SQS endpoint is not started yet: call useSqsEndpoint() at file level');
    return endpoint;
  };
}

/** An open sqs handle plus everything a test needs to clean up after it. */
export interface SqsFixture {
  readonly broker: Broker;
  readonly namespace: string;
  readonly queue: string;
  /** Extra handles (from `broker.duplicate()`) to close on cleanup. */
  readonly others: Broker[];
  /** Tears the queue down and closes every handle. Safe to call twice. */
  cleanup(): Promise<void>;
}

/** Opens an sqs handle on a fresh namespace against `endpoint` and prepares `queue` on it. */
export async function openSqs(
  endpoint: SqsEndpoint,
  mode: 'standard' | 'fifo',
  spec: Partial<Omit<QueueSpec, 'name'>> = {},
  settings: Record<string, string | number | boolean | undefined> = {},
): Promise<SqsFixture> {
  const namespace = uniqueNamespace();
  const queue = 'q';
  const broker = await sqsAdapter.open({
    namespace,
    mode,
    url: endpoint.endpoint,
    commandTimeoutMs: 3_000,
    settings: { region: endpoint.region, endpointKind: endpoint.kind, endpointVersion: endpoint.version, ...settings },
  });
  await broker.prepare({ name: queue, visibilityTimeoutMs: spec.visibilityTimeoutMs ?? 30_000, maxReceives: spec.maxReceives ?? 0 });
  const others: Broker[] = [];
  let cleaned = false;
  return {
    broker,
    namespace,
    queue,
    others,
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      await Promise.all(others.map((other) => other.close()));
      await broker.teardown(queue).catch(() => {});
      await broker.close();
    },
  };
}

/** Names of the queues on `endpoint` whose name starts with `prefix`, straight from ListQueues. */
export async function queuesWithPrefix(endpoint: SqsEndpoint, prefix: string): Promise<string[]> {
  const client = new SQSClient({
    region: endpoint.region,
    ...(endpoint.endpoint !== undefined
      ? { endpoint: endpoint.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }
      : {}),
  });
  try {
    const out = await client.send(new ListQueuesCommand({ QueueNamePrefix: prefix }));
    return (out.QueueUrls ?? []).map((url) => url.slice(url.lastIndexOf('/') + 1));
  } finally {
    client.destroy();
  }
}
