// Shared helpers for tests that talk to a real SQS endpoint (the embedded fauxqs unless SQS_ENDPOINT
// says otherwise): one endpoint per test file, fresh namespaces, and handles that are always cleaned up.

import { afterAll, beforeAll } from 'vitest';
import type { QueueSpec } from '../../src/broker.ts';
import { resolveSqs, type SqsEndpoint } from '../../src/services/sqs-endpoint.ts';
import { sqsAdapter } from '../../adapters/sqs.ts';
import { queuesWithPrefix as registryQueuesWithPrefix } from '../../adapters/sqs-registry.ts';
import { prepareQueueFixture, uniqueNamespace, type QueueFixture } from './fixture.ts';

export { uniqueNamespace };

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
export type SqsFixture = QueueFixture;

/** Opens an sqs handle on a fresh namespace against `endpoint` and prepares queue `q` on it. */
export async function openSqs(
  endpoint: SqsEndpoint,
  mode: 'standard' | 'fifo' | 'fifo-high-throughput',
  spec: Partial<Omit<QueueSpec, 'name'>> = {},
  settings: Record<string, string | number | boolean | undefined> = {},
): Promise<SqsFixture> {
  const namespace = uniqueNamespace();
  const broker = await sqsAdapter.open({
    namespace,
    mode,
    url: endpoint.endpoint,
    commandTimeoutMs: 3_000,
    settings: { region: endpoint.region, endpointKind: endpoint.kind, endpointVersion: endpoint.version, ...settings },
  });
  return prepareQueueFixture(broker, namespace, spec);
}

/** Names of the queues on `endpoint` whose name starts with `prefix`, straight from ListQueues. */
export function queuesWithPrefix(endpoint: SqsEndpoint, prefix: string): Promise<string[]> {
  return registryQueuesWithPrefix({ url: endpoint.endpoint, settings: { region: endpoint.region } }, prefix);
}
