// The adapter registry: `QUEUE=…` finds an adapter here, and each adapter family says where its
// server comes from (the user's URL, the local default port, or an embedded throw-away server).

import type { BrokerAdapter } from '../src/broker.ts';
import { resolveRedis } from '../src/services/redis-server.ts';
import { resolveSqs } from '../src/services/sqs-endpoint.ts';
import { memoryAdapter } from './memory.ts';
import { redisListAdapter } from './redis-list.ts';
import { redisStreamAdapter } from './redis-stream.ts';
import { sqsAdapter } from './sqs.ts';

export const adapters: readonly BrokerAdapter[] = [redisListAdapter, redisStreamAdapter, sqsAdapter, memoryAdapter];

/** Which server an adapter talks to: `none` for one that keeps its queues in this process. */
export function serverOf(adapter: BrokerAdapter): 'redis' | 'sqs' | 'none' {
  return adapter.name === 'sqs' ? 'sqs' : adapter.name === memoryAdapter.name ? 'none' : 'redis';
}

/** Finds an adapter by canonical name or alias, case-insensitively. */
export function findAdapter(name: string): BrokerAdapter | undefined {
  const wanted = name.trim().toLowerCase();
  return adapters.find(
    (adapter) => adapter.name === wanted || adapter.aliases.some((alias) => alias.toLowerCase() === wanted),
  );
}

/** Every accepted QUEUE value, for error messages. */
export function adapterNames(): string {
  return adapters.map((adapter) => [adapter.name, ...adapter.aliases].join('|')).join(', ');
}

/** Where an adapter connects, and the throw-away server to stop afterwards, if one was started. */
export interface Endpoint {
  readonly url: string | undefined;
  readonly settings: Readonly<Record<string, string | number | boolean | undefined>>;
  stop(): Promise<void>;
}

export interface EndpointEnv {
  readonly REDIS_URL?: string | undefined;
  readonly SQS_ENDPOINT?: string | undefined;
  readonly AWS_REGION?: string | undefined;
}

/** Resolves the server for an adapter, starting an embedded one when nothing is configured or answering. */
export async function resolveEndpoint(adapter: BrokerAdapter, env: EndpointEnv): Promise<Endpoint> {
  if (serverOf(adapter) === 'none') return { url: undefined, settings: {}, stop: async () => undefined };
  if (adapter.name === 'sqs') {
    const sqs = await resolveSqs(definedOnly({ SQS_ENDPOINT: env.SQS_ENDPOINT, AWS_REGION: env.AWS_REGION }));
    return {
      url: sqs.endpoint,
      settings: { region: sqs.region, endpointKind: sqs.kind, endpointVersion: sqs.version },
      stop: () => sqs.stop(),
    };
  }
  const redis = await resolveRedis({ REDIS_URL: env.REDIS_URL });
  return { url: redis.url, settings: { endpointKind: redis.kind }, stop: () => redis.stop() };
}

function definedOnly<T extends Record<string, string | undefined>>(record: T): { [K in keyof T]?: string } {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as {
    [K in keyof T]?: string;
  };
}
