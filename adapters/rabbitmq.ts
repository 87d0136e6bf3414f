// RabbitMQ (`QUEUE=RABBITMQ`): the registry entry. Quorum queues by default, classic as a mode; the
// driver is adapters/rabbitmq-driver.ts, the server facts, capabilities and queue set-up are
// adapters/rabbitmq-registry.ts.

import { redactUrl } from '../src/redact.ts';
import { defineAdapter, SettingsReader } from './kit/index.ts';
import { ADAPTER, RabbitDriver, type Shared } from './rabbitmq-driver.ts';
import { DEFAULT_RABBITMQ_URL, isLoopback, openConnection, RABBITMQ_CAPABILITIES, rabbitmqServerFacts, type Mode } from './rabbitmq-registry.ts';

export const rabbitmqAdapter = defineAdapter({
  name: ADAPTER,
  aliases: ['RABBITMQ', 'RABBIT', 'AMQP'],
  modes: { quorum: RABBITMQ_CAPABILITIES, classic: RABBITMQ_CAPABILITIES },
  defaultMode: 'quorum',
  limits: { owner: "RabbitMQ's" },
  async connect(options, mode) {
    const settings = new SettingsReader(ADAPTER, options.settings);
    const url = options.url ?? DEFAULT_RABBITMQ_URL;
    const endpointKind = settings.endpointKind(isLoopback(url) ? 'local' : 'other');
    const prefetch = settings.number('prefetch', { min: 1, integer: true });
    const connection = await openConnection(url, options.commandTimeoutMs);
    // describe() reports the version the server gave when this first connection opened.
    const info = { serverVersion: String(connection.connection.serverProperties.version ?? 'unknown'), endpoint: redactUrl(url), endpointKind };
    const maps = { specs: new Map(), waits: new Map(), groups: new Map(), inFlight: new Map(), drivers: new Set<RabbitDriver>() };
    const shared: Shared = { url, mode: mode as Mode, namespace: options.namespace, timeoutMs: options.commandTimeoutMs, info, prefetch, ...maps, deliveries: 0 };
    return RabbitDriver.connect(shared, undefined, connection);
  },
  ...rabbitmqServerFacts,
});
