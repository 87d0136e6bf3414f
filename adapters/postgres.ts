// PostgreSQL (`QUEUE=POSTGRES`): the registry entry and its capabilities. The driver is
// adapters/postgres-driver.ts; the server facts, names and connecting are adapters/postgres-registry.ts.

import type { BrokerCapabilities, BrokerOptions } from '../src/broker.ts';
import { BrokerError } from '../src/broker.ts';
import { DEFAULT_DATABASE_URL } from '../src/services/postgres-server.ts';
import { defineAdapter, SettingsReader } from './kit/index.ts';
import { PostgresDriver, type Shared } from './postgres-driver.ts';
import { ADAPTER, MAX_NAMESPACE_BYTES, postgresServerFacts } from './postgres-registry.ts';

const CAPABILITIES: BrokerCapabilities = {
  delivery: 'at-least-once', delay: true, deadLetter: true, visibilityTimeout: true, nackDelay: true,
  // Any interval works; a bound of our own, so a delay given in the wrong unit is refused rather than kept for years.
  maxDelayMs: 30 * 24 * 3600 * 1000,
  // Due rows go by id, but a retried or delayed message comes back by its due time, and concurrent publishers commit out of id order.
  ordering: 'none',
  // One statement per call: 1,000 bodies of at most 1 MiB stay under the 1 GiB a protocol message may carry.
  maxBatchSize: 1_000, maxPayloadBytes: 1024 * 1024,
  sharedAcrossProcesses: true,
};

export const postgresAdapter = defineAdapter({
  name: ADAPTER,
  aliases: ['POSTGRES', 'POSTGRESQL', 'PG'],
  modes: { default: CAPABILITIES },
  defaultMode: 'default',
  limits: { owner: "the postgres adapter's" },
  async connect(options: BrokerOptions) {
    const url = options.url ?? DEFAULT_DATABASE_URL;
    if (Buffer.byteLength(options.namespace) > MAX_NAMESPACE_BYTES) {
      throw new BrokerError(ADAPTER, 'open', `namespace "${options.namespace}" is over ${MAX_NAMESPACE_BYTES} bytes, too long for table names`);
    }
    const endpointKind = new SettingsReader(ADAPTER, options.settings).endpointKind('local');
    const shared: Shared = { url, namespace: options.namespace, commandTimeoutMs: options.commandTimeoutMs, endpointKind, queues: new Map(), statements: 0 };
    return PostgresDriver.open(shared);
  },
  ...postgresServerFacts,
});
