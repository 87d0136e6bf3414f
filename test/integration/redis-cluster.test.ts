// The Redis adapters on a Redis Cluster: a throw-away cluster of 3 masters (src/services/redis-cluster.ts)
// reached through the URL of one node, as a user's REDIS_URL would name it. The hash tags the adapters
// choose agree with the server's own slots, the queues of a run spread over the masters (6 queues, 2 on
// each), nothing is lost, scale-out --scale-by queues runs through the CLI on REDIS_CLUSTER=3, bad
// REDIS_CLUSTER values are one line, and a master killed mid-run (SIGKILL, no persistence) and started
// again on its port with its node config loses exactly what it held, and the run still ends.
//
// LIMITATION: one cluster on this host's cores; the runs are small, so this shows the adapters work on a
// cluster, not how fast one is (the README's scale-out curve is that, from a command).
//
// The contract suite's cases run against a cluster too: test/integration/contract.test.ts, the targets
// named `… on a cluster` (test/helpers/brokers.ts).

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bullmqAdapter } from '../../adapters/bullmq.ts';
import { redisListAdapter } from '../../adapters/redis-list.ts';
import { clusterMasters } from '../../adapters/redis-registry.ts';
import { ClusterPlacement, keySlot } from '../../adapters/redis-slots.ts';
import { redisStreamAdapter } from '../../adapters/redis-stream.ts';
import type { BrokerAdapter } from '../../src/broker.ts';
import { DEFAULTS, validateConfig, type RunConfig } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import { buildResult, type ResultFile } from '../../src/report/result-file.ts';
import { runScenario } from '../../src/runner/runner.ts';
import { startRedisCluster, type StartedRedisCluster } from '../../src/services/redis-cluster.ts';
import { pingRedis } from '../../src/services/redis-server.ts';
import { findScenario } from '../../scenarios/index.ts';
import { runCli } from '../helpers/cli.ts';
import { sleep, waitFor } from '../helpers/faults.ts';
import { uniqueNamespace } from '../helpers/redis.ts';

let cluster: StartedRedisCluster;
beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

/** Runs scenario `name` on the cluster as the CLI would configure it (defaults, the scenario's, `change`), and reads its result back. */
async function runOnCluster(adapter: BrokerAdapter, name: string, change: Partial<RunConfig>, namespace = uniqueNamespace()): Promise<ResultFile> {
  const scenario = findScenario(name)!;
  const mode = change.mode ?? adapter.defaultMode;
  const capabilities = adapter.capabilities(mode);
  const { task, ...defaults } = scenario.defaults ?? {};
  const config: RunConfig = {
    ...DEFAULTS,
    ...defaults,
    publishBatch: Math.min(DEFAULTS.publishBatch, capabilities.maxBatchSize),
    adapter: adapter.name,
    mode,
    scenario: name,
    receiveWaitMs: 200,
    timeoutMs: 40_000,
    resultsDir: tmpdir(),
    ...change,
    task: { ...NO_TASK, ...task, ...change.task },
  };
  validateConfig(config, capabilities);
  const configured = scenario.configure ? scenario.configure(config, capabilities) : config;
  const record = await runScenario({ adapter, connection: { url: cluster.url, commandTimeoutMs: 3_000 }, config: configured, scenario, namespace });
  return JSON.parse(JSON.stringify(buildResult(record))) as ResultFile;
}

/** `slot of <queue> on <master>` entries (the adapters' queueStats on a cluster) as queue -> master. */
function mastersByQueue(stats: Readonly<Record<string, unknown>>): Map<string, string> {
  const found = new Map<string, string>();
  for (const name of Object.keys(stats)) {
    const match = /^slot of (\S+) on (\S+)$/.exec(name);
    if (match) found.set(match[1]!, match[2]!);
  }
  return found;
}

describe('hash tags', () => {
  it('keySlot gives the slot the server gives, hash tags included', async () => {
    const keys = ['plain', '{user1000}.following', 'foo{}{bar}', 'foo{{bar}}zap', 'foo{bar}{zap}', '{}', 'a{', '}b{c}', 'ünï{cödé}', `bb-x:{brokerbench-0:2}:ready`, 'x'.repeat(500)];
    const node = new Redis(cluster.url, { maxRetriesPerRequest: 0 });
    try {
      for (const key of keys) expect(keySlot(key), key).toBe(Number(await node.call('CLUSTER', 'KEYSLOT', key)));
    } finally {
      node.disconnect();
    }
  });

  it('queues named name-0 … name-5 go to masters 0, 1, 2, 0, 1, 2, in the order of their lowest slot', async () => {
    const client = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0]!.port }], { lazyConnect: true });
    await client.connect();
    try {
      const placement = new ClusterPlacement(client.slots);
      expect(placement.masters).toBe(3);
      const masterOf = (queue: string): string => client.slots[placement.slot(queue)]![0]!;
      const masters = Array.from({ length: 6 }, (_, i) => masterOf(`name-${i}`));
      expect(new Set(masters).size).toBe(3);
      expect(masters.slice(3)).toEqual(masters.slice(0, 3));
      // Master 0 is the one serving slot 0.
      expect(masters[0]).toBe(client.slots[0]![0]);
      // Every key of a queue has the queue's one tag.
      expect(placement.tag('name-4')).toMatch(/^name-4:\d+$/);
    } finally {
      client.disconnect();
    }
  });
});

describe('throughput with --queues 6 on 3 masters', () => {
  it.each([
    ['redis-list reliable', redisListAdapter, 'reliable', 6_000],
    ['redis-list simple', redisListAdapter, 'simple', 6_000],
    ['redis-stream', redisStreamAdapter, 'group', 6_000],
    ['bullmq', bullmqAdapter, 'default', 1_200],
  ] as const)('%s: two queues on each master, nothing lost', async (_label, adapter, mode, messages) => {
    const result = await runOnCluster(adapter, 'throughput', { mode, messages, queues: 6, consumers: 6 });
    expect(result.status, result.reason).toBe('completed');
    expect(result.broker.endpoint).toMatch(/ \(cluster of 3 masters\)$/);
    expect(result.ledger).toMatchObject({ expected: messages, completed: messages, lost: 0, duplicateDeliveries: 0 });
    const placed = mastersByQueue(result.queueStats ?? {});
    expect([...placed.keys()].sort()).toEqual(Array.from({ length: 6 }, (_, i) => `brokerbench-${i}`));
    const perMaster = new Map<string, number>();
    for (const master of placed.values()) perMaster.set(master, (perMaster.get(master) ?? 0) + 1);
    expect([...perMaster.keys()].sort()).toEqual(cluster.nodes.map((node) => `127.0.0.1:${node.port}`).sort());
    expect([...perMaster.values()]).toEqual([2, 2, 2]);
  });
});

describe('the command line on REDIS_CLUSTER', () => {
  it('scale-out --scale-by queues --steps 1,3: 4 consumers per queue, the 3 queues of step 2 on 3 masters, the cluster stopped after', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'brokerbench-cluster-cli-'));
    try {
      const run = await runCli(
        ['scenario', '3000', '--scenario', 'scale-out', '--scale-by', 'queues', '--steps', '1,3', '--task-ms', '1', '--quiet', '--results-dir', dir],
        { QUEUE: 'REDIS', REDIS_URL: undefined, REDIS_CLUSTER: '3', COLUMNS: '200' },
        90_000,
      );
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/scale-out by queues \(3,000 messages per step, 4 consumers per queue\)/);
      expect(run.stdout).toMatch(/│ queues │ consumers │ completed\/s │/);
      expect(run.stdout).toMatch(/│ 1 +│ 4 +│/);
      expect(run.stdout).toMatch(/│ 3 +│ 12 +│/);
      const [file] = readdirSync(dir).filter((name) => name.endsWith('.json'));
      const result = JSON.parse(readFileSync(path.join(dir, file!), 'utf8')) as ResultFile;
      expect(result.broker.endpointKind).toBe('embedded');
      expect(result.broker.endpoint).toMatch(/^redis:\/\/127\.0\.0\.1:\d+\/? \(cluster of 3 masters\)$/);
      const steps = result.scenarioData!.records['steps']!;
      expect(steps.map((step) => [step['queues'], step['consumers'], step['lost'], step['status']])).toEqual([
        [1, 4, 0, 'completed'],
        [3, 12, 0, 'completed'],
      ]);
      const second = mastersByQueue(steps[1]!);
      expect([...second.keys()].sort()).toEqual(['brokerbench-n1-0', 'brokerbench-n1-1', 'brokerbench-n1-2']);
      expect(new Set(second.values()).size).toBe(3);
      expect(result.ledger).toMatchObject({ expected: 6_000, completed: 6_000, lost: 0 });
      // The throw-away cluster is gone with the run.
      const ports = [...second.values()].map((master) => Number(master.split(':')[1]));
      for (const port of ports) expect(await pingRedis('127.0.0.1', port, 500)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('REDIS_CLUSTER=2: one line, exit 2, nothing written', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'brokerbench-cluster-bad-'));
    try {
      const run = await runCli(['scenario', '100', '--quiet', '--results-dir', dir], { QUEUE: 'REDIS', REDIS_URL: undefined, REDIS_CLUSTER: '2' });
      expect(run.code).toBe(2);
      expect(run.stderr).toBe('brokerbench: REDIS_CLUSTER must be a number of masters from 3 to 16, got "2"\n');
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('REDIS_CLUSTER takes a count of 3 to 16 masters, and not beside REDIS_URL', () => {
    expect(clusterMasters({})).toBeUndefined();
    expect(clusterMasters({ REDIS_CLUSTER: ' 3 ' })).toBe(3);
    expect(clusterMasters({ REDIS_CLUSTER: '16' })).toBe(16);
    for (const given of ['2', '17', 'three', '3.5', '-3', '0x3']) {
      expect(() => clusterMasters({ REDIS_CLUSTER: given }), given).toThrow(new UsageError(`REDIS_CLUSTER must be a number of masters from 3 to 16, got "${given}"`));
    }
    expect(() => clusterMasters({ REDIS_CLUSTER: '3', REDIS_URL: 'redis://127.0.0.1:6379' })).toThrow(/^REDIS_URL and REDIS_CLUSTER are both set: .*; unset one$/);
  });

  it('scale-out --scale-by queues refuses --queues, too few consumers for the first step, and steps past 1,000 consumers', () => {
    const scaleOut = findScenario('scale-out')!;
    const configure = (change: Partial<RunConfig>): string => {
      try {
        scaleOut.configure!({ ...DEFAULTS, adapter: 'redis-list', mode: 'reliable', scenario: 'scale-out', task: NO_TASK, scaleBy: 'queues', ...change }, redisListAdapter.capabilities('reliable'));
        return 'accepted';
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(configure({ scaleSteps: [1, 3] })).toBe('accepted');
    expect(configure({ scaleSteps: [1, 3], queues: 2 })).toBe('scale-out --scale-by queues takes its queue counts from --steps: leave --queues out');
    expect(configure({ scaleSteps: [3, 6], consumers: 2 })).toBe("--consumers 2 is fewer than the first step's 3 queues: every queue needs a consumer");
    expect(configure({ scaleSteps: [1, 300], consumers: 4 })).toBe(
      '--scale-by queues would open 1,200 consumers in its largest step (4 per queue), over the limit of 1,000: lower --consumers or --steps',
    );
  });
});

describe('a master killed mid-run and started again empty', () => {
  it('redis-list reliable on 3 queues: exactly the messages that master held are lost, the others complete, the run ends', async () => {
    const namespace = uniqueNamespace();
    const victim = 1;
    const started = Date.now();
    const running = runOnCluster(
      redisListAdapter,
      'throughput',
      {
        channel: 'restart',
        queues: 3,
        messages: 3_000,
        ratePerSec: 1_500,
        publishBatch: 20,
        publishConcurrency: 2,
        consumers: 3,
        receiveBatch: 10,
        // 3 consumers x 10 messages per 40 ms: about 750 msg/s, so a backlog builds on every master.
        task: { durationMs: 40, distribution: 'fixed', work: 'sleep', failureRate: 0 },
        visibilityTimeoutMs: 1_000,
        timeoutMs: 40_000,
      },
      namespace,
    );
    running.catch(() => undefined);

    const probe = new Redis(cluster.nodes[victim]!.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    const keysOnVictim = async (): Promise<string[]> => (await probe.scan('0', 'MATCH', `${namespace}:*`, 'COUNT', 10_000))[1];
    await waitFor('a backlog of 100 on the victim', async () => {
      const ready = (await keysOnVictim()).filter((key) => key.endsWith(':ready'));
      return ready.length > 0 && (await probe.llen(ready[0]!)) >= 100;
    });
    // Freeze every change on the victim, then read what it holds: the messages that die with it.
    await probe.call('CLIENT', 'PAUSE', '10000', 'WRITE');
    const keys = await keysOnVictim();
    const held: number[] = [];
    const indexOf = (body: string): number => Number(/"i":(\d+)/.exec(body)?.[1]);
    for (const key of keys) {
      if (key.endsWith(':ready')) held.push(...(await probe.lrange(key, 0, -1)).map(indexOf));
      if (key.endsWith(':bodies')) held.push(...(await probe.hvals(key)).map(indexOf));
      if (key.endsWith(':delayed')) held.push(...(await probe.zrange(key, 0, -1)).map(indexOf));
    }
    probe.disconnect();
    // The victim held the keys of one queue only: one hash tag.
    expect(new Set(keys.map((key) => /\{[^}]*\}/.exec(key)?.[0])).size).toBe(1);
    expect(held.length).toBeGreaterThan(0);
    expect(held.every(Number.isSafeInteger)).toBe(true);

    await cluster.kill(victim);
    await sleep(1_000);
    await cluster.restart(victim);
    const result = await running;
    const elapsedMs = Date.now() - started;
    const { ledger, counters } = result;
    console.log(
      `master ${victim} killed with ${held.length} messages on it: lost ${ledger.lost}, completed ${ledger.completed}, ` +
        `publish failed ${ledger.publishFailed}, errors publish/receive/ack ${counters['publishErrors']}/${counters['receiveErrors']}/${counters['ackErrors']}, ${elapsedMs} ms`,
    );
    expect(result.status, result.reason).toBe('completed');
    expect(elapsedMs).toBeLessThan(40_000);
    expect(ledger.lost).toBe(held.length);
    // The lost ones are those very messages: the first never completed are the first the victim held.
    expect(result.missing).toEqual([...held].sort((a, b) => a - b).slice(0, result.missing.length));
    expect(result.missing.length).toBe(Math.min(20, held.length));
    expect(ledger.completed + ledger.lost).toBe(ledger.expected - ledger.publishFailed - (ledger.notSent ?? 0));
    expect(result.verdicts[0]).toMatch(new RegExp(`^LOST ${held.length} of `));
    expect(result.errors.join('\n')).toMatch(/redis-list (publish|receive|ack)/);
    expect(result.finalDepth).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });
});
