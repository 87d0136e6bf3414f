// Any adapter and mode as a test fixture: the matrix of every adapter x mode from adapters/index.ts, the
// servers they talk to (the local Redis and the embedded SQS, or Redis and LocalStack in containers when a
// Docker engine answers and no endpoint was given; none for memory), and handles that are always torn down and closed.
// Every adapter served by REDIS_URL runs a second time against a throw-away Redis Cluster of 3 masters
// (`redis-list reliable on a cluster`, …), which a REDIS_URL may name as well as one Redis.
//
// LIMITATION: the container path (testcontainers) only runs where a Docker engine answers; on machines
// without one it is detected as absent in a few ms and never exercised. Set BROKERBENCH_TEST_CONTAINERS=off
// to keep the local servers even where an engine answers.

import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { adapters } from '../../adapters/index.ts';
import type { Broker, BrokerAdapter, BrokerCapabilities, BrokerInfo, Endpoint, QueueSpec } from '../../src/broker.ts';
import { startRedisCluster } from '../../src/services/redis-cluster.ts';
import { resolveSqs, type SqsEndpoint } from '../../src/services/sqs-endpoint.ts';
import { prepareQueueFixture, uniqueNamespace, type QueueFixture } from './fixture.ts';
import { redisUrl } from './redis.ts';

/** One adapter in one mode, as the contract suite runs it. */
export interface BrokerTarget {
  readonly adapter: BrokerAdapter;
  readonly mode: string;
  /** `redis-list simple`, `sqs fifo`, …: how test names and skip reasons name it. */
  readonly label: string;
  readonly capabilities: BrokerCapabilities;
  /** Adapter settings the suite opens it with (FIFO: several message groups, so consumers can work at once). */
  readonly settings: Readonly<Record<string, string | number | boolean | undefined>>;
  /** Which of the suite's servers it talks to; absent: the one its adapter's variable names. */
  readonly server?: string;
}

/** The suite's throw-away Redis Cluster, among its servers. */
export const REDIS_CLUSTER_SERVER = 'REDIS_URL (cluster)';

/** Every adapter x mode of the registry, in registry order; then those served by REDIS_URL again, on a Redis Cluster. */
export function brokerTargets(): BrokerTarget[] {
  const target = (adapter: BrokerAdapter, mode: string, onCluster: boolean): BrokerTarget => ({
    adapter,
    mode,
    label: `${adapter.name} ${mode}${onCluster ? ' on a cluster' : ''}`,
    capabilities: adapter.capabilities(mode),
    settings: adapter.testing?.settings?.(mode) ?? {},
    ...(onCluster ? { server: REDIS_CLUSTER_SERVER } : {}),
  });
  const onOne = adapters.flatMap((adapter) => adapter.modes.map((mode) => target(adapter, mode, false)));
  const onCluster = adapters.filter((adapter) => adapter.serverVariable === 'REDIS_URL').flatMap((adapter) => adapter.modes.map((mode) => target(adapter, mode, true)));
  return [...onOne, ...onCluster];
}

/** The servers a suite talks to. */
export interface BrokerEndpoints {
  readonly redis: { readonly url: string; readonly kind: BrokerInfo['endpointKind'] };
  readonly sqs: SqsEndpoint;
  /** Every server the registry's adapters need, by the variable that names it (`REDIS_URL`, `SQS_ENDPOINT`, …). */
  readonly servers: Readonly<Record<string, ServerConnection>>;
  /** Servers the registry could not find or start, by variable, with why: only their adapters' cases fail. */
  readonly unavailable: Readonly<Record<string, Error>>;
  /** One line saying which servers these are, e.g. `Redis redis://127.0.0.1:6379 (local), SQS … (embedded, fauxqs 1.9.2)`. */
  readonly summary: string;
  /** Stops whatever was started for the suite. Calling it twice is harmless. */
  stop(): Promise<void>;
}

/** Where one server is reached, and the settings the CLI would open an adapter on it with. */
export type ServerConnection = Pick<Endpoint, 'url' | 'settings'>;

/** How long a Docker engine gets to answer before the suite uses the local servers. */
const ENGINE_PROBE_MS = 3_000;
/** Container start-up, including a first image pull. */
const CONTAINER_START_MS = 120_000;
const REDIS_IMAGE = 'redis:7.4-alpine';
const LOCALSTACK_IMAGE = 'localstack/localstack:4.4';

/**
 * Finds the servers: a user's REDIS_URL / SQS_ENDPOINT are always used as given. For each one not given,
 * a container is started if a Docker engine answers (within ~3 s), else the local Redis (REDIS_URL from
 * test/global-setup.ts) and the embedded fauxqs are used.
 */
export async function startBrokerEndpoints(): Promise<BrokerEndpoints> {
  const redisGiven = process.env['BROKERBENCH_TEST_REDIS_GIVEN'] !== 'no';
  const sqsGiven = (process.env['SQS_ENDPOINT'] ?? '').trim() !== '';
  const containersOff = /^(off|0|no|false)$/i.test(process.env['BROKERBENCH_TEST_CONTAINERS'] ?? '');
  const useContainers = !containersOff && !(redisGiven && sqsGiven) && (await dockerEngineAnswers(ENGINE_PROBE_MS));
  const stops: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    for (const one of stops.splice(0).reverse()) await one().catch(() => undefined);
  };
  try {
    const loopback = /^rediss?:\/\/([^@/]*@)?(127\.|localhost|\[::1\])/.test(redisUrl());
    let redis: BrokerEndpoints['redis'] = { url: redisUrl(), kind: loopback ? 'local' : 'other' };
    let sqsSetting = process.env['SQS_ENDPOINT'];
    if (useContainers) {
      const { GenericContainer, Wait } = await import('testcontainers');
      const starting: Promise<void>[] = [];
      if (!redisGiven) {
        starting.push(
          (async () => {
            const container = await new GenericContainer(REDIS_IMAGE)
              .withExposedPorts(6379)
              .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
              .withStartupTimeout(CONTAINER_START_MS)
              .start();
            stops.push(async () => void (await container.stop()));
            redis = { url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`, kind: 'docker' };
          })(),
        );
      }
      if (!sqsGiven) {
        starting.push(
          (async () => {
            const container = await new GenericContainer(LOCALSTACK_IMAGE)
              .withEnvironment({ SERVICES: 'sqs,sns' })
              .withExposedPorts(4566)
              .withWaitStrategy(Wait.forHttp('/_localstack/health', 4566).forStatusCode(200))
              .withStartupTimeout(CONTAINER_START_MS)
              .start();
            stops.push(async () => void (await container.stop()));
            sqsSetting = `http://${container.getHost()}:${container.getMappedPort(4566)}`;
          })(),
        );
      }
      const started = await Promise.allSettled(starting);
      const failed = started.find((result) => result.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    }
    const sqs = await resolveSqs({ SQS_ENDPOINT: sqsSetting, AWS_REGION: process.env['AWS_REGION'] });
    stops.push(() => sqs.stop());
    const servers: Record<string, ServerConnection> = {
      REDIS_URL: { url: redis.url, settings: { endpointKind: redis.kind } },
      SQS_ENDPOINT: { url: sqs.endpoint, settings: { region: sqs.region, endpointKind: sqs.kind, endpointVersion: sqs.version } },
    };
    const unavailable: Record<string, Error> = {};
    // A cluster of 3 masters for the cluster targets; one that cannot start fails only their cases.
    try {
      const cluster = await startRedisCluster({ masters: 3 });
      stops.push(() => cluster.stop());
      servers[REDIS_CLUSTER_SERVER] = { url: cluster.url, settings: { endpointKind: 'embedded' } };
    } catch (error) {
      unavailable[REDIS_CLUSTER_SERVER] = error instanceof Error ? error : new Error(String(error));
    }
    // Any other server an adapter names is found as its registry entry says, as the CLI would.
    for (const adapter of adapters) {
      const variable = adapter.serverVariable;
      if (variable === undefined || servers[variable] !== undefined || adapter.resolve === undefined) continue;
      // One that cannot be found fails only its own adapter's cases, with the registry's one-line reason.
      const endpoint = await adapter.resolve(process.env).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
      if (endpoint instanceof Error) {
        unavailable[variable] = endpoint;
        continue;
      }
      stops.push(() => endpoint.stop());
      servers[variable] = endpoint;
    }
    const why = useContainers
      ? 'containers started with testcontainers for what was not given'
      : containersOff
        ? 'BROKERBENCH_TEST_CONTAINERS=off'
        : redisGiven && sqsGiven
          ? 'REDIS_URL and SQS_ENDPOINT given'
          : 'no Docker engine answers';
    const cluster = servers[REDIS_CLUSTER_SERVER];
    const summary =
      `contract suite uses Redis ${redis.url.replace(/\/\/[^@/]*@/, '//***@')} (${redis.kind}) and ` +
      `SQS ${sqs.endpoint ?? 'AWS default'} (${sqs.kind}, ${sqs.version}): ${why}; ` +
      (cluster ? `a throw-away Redis Cluster of 3 masters at ${cluster.url}` : `no Redis Cluster (${unavailable[REDIS_CLUSTER_SERVER]?.message})`);
    return { redis, sqs, servers, unavailable, summary, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Starts the servers in beforeAll (printing the one line saying which) and stops them in afterAll.
 * Returns a getter, valid inside tests.
 */
export function useBrokerEndpoints(): () => BrokerEndpoints {
  let endpoints: BrokerEndpoints | undefined;
  beforeAll(async () => {
    endpoints = await startBrokerEndpoints();
    console.log(endpoints.summary);
  }, CONTAINER_START_MS + 30_000);
  afterAll(async () => {
    await endpoints?.stop();
  });
  return () => {
    if (endpoints === undefined) throw new Error('the broker endpoints are not started yet: call useBrokerEndpoints() at file level');
    return endpoints;
  };
}

/** True if a Docker engine answers within `timeoutMs`. Looks for a socket or DOCKER_HOST first, so a machine without one pays nothing. */
export async function dockerEngineAnswers(timeoutMs: number): Promise<boolean> {
  if (!dockerEngineConfigured()) return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const client = await Promise.race([
      getContainerRuntimeClient(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('no answer')), timeoutMs);
      }),
    ]);
    return client !== undefined;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** The places testcontainers looks for an engine: DOCKER_HOST, its properties file, the usual sockets. */
function dockerEngineConfigured(): boolean {
  if ((process.env['DOCKER_HOST'] ?? '').trim() !== '') return true;
  const home = homedir();
  const candidates = [
    path.join(home, '.testcontainers.properties'),
    '/var/run/docker.sock',
    path.join(home, '.docker', 'run', 'docker.sock'),
    path.join(home, '.docker', 'desktop', 'docker.sock'),
    path.join('/run', 'user', String(userInfo().uid), 'docker.sock'),
  ];
  const xdg = process.env['XDG_RUNTIME_DIR'];
  if (xdg) candidates.push(path.join(xdg, 'docker.sock'));
  return candidates.some((candidate) => existsSync(candidate));
}

/** Where `target` connects on `endpoints`: URL and the settings the CLI would pass. */
export function connectionFor(
  endpoints: BrokerEndpoints,
  target: BrokerTarget,
): { url: string | undefined; settings: Record<string, string | number | boolean | undefined> } {
  const server = serverFor(endpoints, target);
  return { url: server.url, settings: { ...server.settings, ...target.settings } };
}

/** The server `target` talks to: its own, else the one its adapter names (none for one that needs no server). */
function serverFor(endpoints: BrokerEndpoints, target: BrokerTarget): ServerConnection {
  const variable = target.server ?? target.adapter.serverVariable;
  if (variable === undefined) return { url: undefined, settings: {} };
  const missing = endpoints.unavailable[variable];
  if (missing !== undefined) throw missing;
  const server = endpoints.servers[variable];
  if (server === undefined) throw new Error(`no test server for ${variable} (${target.label})`);
  return server;
}

/** An open handle on a fresh namespace with one prepared queue, and everything needed to clean up after it. */
export interface BrokerFixture extends QueueFixture {
  readonly target: BrokerTarget;
  /** A new handle on its own connection, closed by cleanup(). */
  duplicate(): Promise<Broker>;
  /** What the adapter left on its server (Redis keys, SQS queues) under this fixture's namespace, straight from the server. */
  leftovers(): Promise<string[]>;
}

/** Command timeout the fixtures open with, as the CLI does. */
export const FIXTURE_COMMAND_TIMEOUT_MS = 3_000;

/** Opens `target` on a fresh namespace against `endpoints` and prepares queue `q` with `spec`. */
export async function openBrokerFixture(
  endpoints: BrokerEndpoints,
  target: BrokerTarget,
  spec: Partial<Omit<QueueSpec, 'name'>> = {},
): Promise<BrokerFixture> {
  const namespace = uniqueNamespace();
  const { url, settings } = connectionFor(endpoints, target);
  const broker = await target.adapter.open({
    namespace,
    mode: target.mode,
    ...(url === undefined ? {} : { url }),
    commandTimeoutMs: FIXTURE_COMMAND_TIMEOUT_MS,
    settings,
  });
  const fixture = await prepareQueueFixture(broker, namespace, spec);
  return {
    ...fixture,
    target,
    async duplicate() {
      const other = await broker.duplicate();
      fixture.others.push(other);
      return other;
    },
    leftovers: async () => (await target.adapter.testing?.leftovers(serverFor(endpoints, target), namespace)) ?? [],
  };
}
