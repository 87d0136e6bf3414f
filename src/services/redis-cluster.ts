// A throw-away Redis Cluster on loopback: N masters (no replicas) started with `redis-server
// --cluster-enabled yes` on free ports, joined with `redis-cli --cluster create`, ready once every node
// says cluster_state:ok, stopped and removed afterwards. For REDIS_CLUSTER=N and the tests; a test can
// kill one master and start it again on its port with its node config (its slots) and no data.
//
// LIMITATION: needs redis-server 7.0 or later (--cluster-port keeps the bus port apart from the
// client port, so both can be free ones) and redis-cli on PATH; 3 masters at least, as redis-cli
// creates none smaller. Every node shares this host's cores: a cluster here shows the method, not
// what masters on machines of their own would give.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { UsageError } from '../errors.ts';
import { findOnPath, freePort, lastLine } from './children.ts';
import { startRedisServer, type StartedRedisServer } from './redis-server.ts';

/** Fewest masters `redis-cli --cluster create` accepts. */
export const MIN_CLUSTER_MASTERS = 3;
/** Most masters a throw-away cluster gets: each is a redis-server sharing this host. */
export const MAX_CLUSTER_MASTERS = 16;

const HOST = '127.0.0.1';
/** How long `redis-cli --cluster create` may take. */
const CREATE_TIMEOUT_MS = 30_000;
/** How long the nodes get to agree that the cluster is up (cluster_state:ok on every one). */
const READY_TIMEOUT_MS = 20_000;
/**
 * A master unreachable this long is marked failing by the others. Redis' default (15 s): a node killed
 * and started again within it comes back to the same cluster without the others ever stopping.
 */
const NODE_TIMEOUT_MS = 15_000;

/** One master of the cluster. */
export interface ClusterNode {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
}

export interface StartedRedisCluster {
  /** The first master's URL: any node of a cluster leads a client to all of them. */
  readonly url: string;
  readonly nodes: readonly ClusterNode[];
  /** SIGKILLs master `index` (no persistence: what it held is gone). Harmless on one already down. */
  kill(index: number): Promise<void>;
  /** Starts master `index` again on its port with its node config (the same id and slots), empty; resolves once the cluster is ok again. */
  restart(index: number): Promise<void>;
  /** Stops every node and removes their folders. Calling it twice is harmless. */
  stop(): Promise<void>;
}

/**
 * Starts `masters` redis-servers in cluster mode on free loopback ports, joins them into one cluster
 * (16384 slots split evenly, no replicas) and resolves once every node reports cluster_state:ok.
 * Rejects with a one-line UsageError when a program is missing or the cluster does not form.
 */
export async function startRedisCluster(options: { masters?: number } = {}): Promise<StartedRedisCluster> {
  const masters = options.masters ?? MIN_CLUSTER_MASTERS;
  if (!Number.isSafeInteger(masters) || masters < MIN_CLUSTER_MASTERS || masters > MAX_CLUSTER_MASTERS) {
    throw new UsageError(`a Redis Cluster needs ${MIN_CLUSTER_MASTERS} to ${MAX_CLUSTER_MASTERS} masters, got ${String(masters)}`);
  }
  const cli = findOnPath('redis-cli');
  if (cli === undefined) throw new UsageError('redis-cli is not on PATH; install it (apt-get install redis-tools) to start a Redis Cluster');
  // The node configs live here, outside each server's own folder (removed when it exits), so a node
  // started again finds its id and its slots.
  const base = mkdtempSync(join(tmpdir(), 'brokerbench-redis-cluster-'));
  const removeBase = (): void => rmSync(base, { recursive: true, force: true });
  process.once('exit', removeBase);
  const ports: { port: number; busPort: number }[] = [];
  const taken = new Set<number>();
  while (ports.length < masters) {
    const port = await freePort(HOST);
    const busPort = await freePort(HOST);
    if (port === busPort || taken.has(port) || taken.has(busPort)) continue;
    taken.add(port).add(busPort);
    ports.push({ port, busPort });
  }
  const args = ({ port, busPort }: { port: number; busPort: number }): string[] => [
    '--cluster-enabled', 'yes',
    '--cluster-config-file', join(base, `nodes-${port}.conf`),
    '--cluster-port', String(busPort),
    '--cluster-node-timeout', String(NODE_TIMEOUT_MS),
  ];
  const servers: (StartedRedisServer | undefined)[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await Promise.all(servers.map((server) => server?.stop()));
      removeBase();
      process.off('exit', removeBase);
    })());
  try {
    servers.push(...(await Promise.all(ports.map((node) => startRedisServer({ port: node.port, args: args(node) })))));
    await createCluster(cli, ports.map(({ port }) => port));
    await waitForClusterOk(ports.map(({ port }) => port), READY_TIMEOUT_MS);
  } catch (error) {
    await stop();
    throw error;
  }
  const nodes = ports.map(({ port }) => ({ port, url: `redis://${HOST}:${port}` }));
  const nodeAt = (index: number): { port: number; busPort: number } => {
    const node = ports[index];
    if (node === undefined) throw new Error(`the cluster has no master ${index} (it has ${ports.length})`);
    return node;
  };
  return {
    url: nodes[0]!.url,
    nodes,
    async kill(index) {
      nodeAt(index);
      const server = servers[index];
      servers[index] = undefined;
      if (server === undefined) return;
      server.process.kill('SIGKILL');
      await server.stop();
    },
    async restart(index) {
      const node = nodeAt(index);
      if (servers[index] !== undefined) throw new Error(`master ${index} (port ${node.port}) is still running`);
      servers[index] = await startRedisServer({ port: node.port, args: args(node) });
      await waitForClusterOk(ports.map(({ port }) => port), READY_TIMEOUT_MS);
    },
    stop,
  };
}

/** `redis-cli --cluster create` over `ports`: slots split evenly, no replicas, no questions asked. */
function createCluster(cli: string, ports: readonly number[]): Promise<void> {
  const argv = ['--cluster', 'create', ...ports.map((port) => `${HOST}:${port}`), '--cluster-replicas', '0', '--cluster-yes'];
  return new Promise((resolve, reject) => {
    execFile(cli, argv, { env: {}, timeout: CREATE_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) return resolve();
      const why = lastLine(`${stdout}\n${stderr}`.replace(/\x1b\[[0-9;]*m/g, ''));
      reject(new UsageError(`redis-cli --cluster create on ports ${ports.join(', ')} failed: ${why}`));
    });
  });
}

/** Resolves once every node on `ports` reports cluster_state:ok; a UsageError after `limitMs`. */
export async function waitForClusterOk(ports: readonly number[], limitMs: number): Promise<void> {
  const until = Date.now() + limitMs;
  const clients = ports.map((port) => {
    const client = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000 });
    client.on('error', () => undefined);
    return client;
  });
  const state = async (client: Redis): Promise<string> => {
    try {
      if (client.status === 'wait' || client.status === 'end') await client.connect();
      const info = String(await client.call('CLUSTER', 'INFO'));
      return /^cluster_state:(\w+)/m.exec(info)?.[1] ?? 'unknown';
    } catch (error) {
      return `not answering (${error instanceof Error ? error.message : String(error)})`;
    }
  };
  try {
    for (;;) {
      const states = await Promise.all(clients.map(state));
      if (states.every((s) => s === 'ok')) return;
      if (Date.now() > until) {
        const bad = states.map((s, i) => [ports[i], s] as const).filter(([, s]) => s !== 'ok');
        throw new UsageError(`the Redis Cluster did not come up within ${limitMs} ms: ${bad.map(([port, s]) => `port ${port} ${s}`).join(', ')}`);
      }
      await sleep(50);
    }
  } finally {
    for (const client of clients) client.disconnect();
  }
}
