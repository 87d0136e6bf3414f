// The adapter registry: `QUEUE=…` finds an adapter here. Every broker-specific fact (where its server
// comes from, its secrets, a memory-capped server, its flags, its price, what the tests need) is in its
// entry (src/broker.ts, BrokerAdapter); callers ask these functions instead of naming an adapter.
//
// LIMITATION: an adapter is found by name only; two entries sharing an alias would shadow each other.

import type { BrokerAdapter, Endpoint, Environment, FlagSetting, SecretVariable } from '../src/broker.ts';
import { bullmqAdapter } from './bullmq.ts';
import { memoryAdapter } from './memory.ts';
import { natsAdapter } from './nats.ts';
import { postgresAdapter } from './postgres.ts';
import { rabbitmqAdapter } from './rabbitmq.ts';
import { redisListAdapter } from './redis-list.ts';
import { redisStreamAdapter } from './redis-stream.ts';
import { sqsAdapter } from './sqs.ts';

export const adapters: readonly BrokerAdapter[] = [redisListAdapter, redisStreamAdapter, sqsAdapter, memoryAdapter, rabbitmqAdapter, natsAdapter, postgresAdapter, bullmqAdapter];


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

/** The QUEUE value used when none is given. */
export const DEFAULT_QUEUE = 'REDIS';

/** Where an adapter connects, and the throw-away server to stop afterwards, if one was started. */
export type { Endpoint } from '../src/broker.ts';

/**
 * Resolves the server for an adapter, as its registry entry says (its environment variable, the local
 * default, or an embedded throw-away server); an adapter that declares none needs no server.
 */
export async function resolveEndpoint(adapter: BrokerAdapter, env: Environment): Promise<Endpoint> {
  if (adapter.resolve) return adapter.resolve(env);
  return { url: undefined, settings: {}, stop: async () => {} };
}

/** Every environment variable an adapter of the registry declares a secret. */
export function secretVariables(): SecretVariable[] {
  return adapters.flatMap((adapter) => adapter.secretVariables ?? []);
}

/** The adapters that accept `--<flag>`, with what the flag does. */
export function adaptersWithFlag(flag: string): { adapter: BrokerAdapter; setting: FlagSetting }[] {
  return adapters.flatMap((adapter) => {
    const setting = adapter.flagSettings?.[flag];
    return setting === undefined ? [] : [{ adapter, setting }];
  });
}
