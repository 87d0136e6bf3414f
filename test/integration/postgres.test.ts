// The postgres adapter through the scenarios as the CLI drives them, on the PostgreSQL that DATABASE_URL
// names or the one on 127.0.0.1:5432 (a throw-away cluster where neither answers): throughput, crash
// recovery with seeded random kills, retry-dlq, delayed, fan-out and backlog; the dead tuples a run leaves;
// a throw-away cluster started and removed; an unreachable server told in one line.

import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgresAdapter } from '../../adapters/postgres.ts';
import { postgresTableStats, relationsWithPrefix } from '../../adapters/postgres-registry.ts';
import { printSummary } from '../../src/report/print.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import { resolvePostgres, startPostgresServer } from '../../src/services/postgres-server.ts';
import { runCli } from '../helpers/cli.ts';
import { expectFannedOut, expectRecovered, scenarioRunner, scenarioValues } from '../helpers/scenarios.ts';

const { connection, run } = scenarioRunner(() => {
  throw new Error('these tests use no SQS endpoint');
});


describe('postgres through the scenarios', () => {
  it('throughput: every message completed once, none lost, and the run leaves no table behind', async () => {
    const result = await run('throughput', 'postgres', { messages: 3_000, consumers: 4, receiveBatch: 100 });
    expect(result.status).toBe('completed');
    expect(result.ledger).toMatchObject({ expected: 3_000, completed: 3_000, deliveries: 3_000, lost: 0, duplicateDeliveries: 0, foreign: 0 });
    expect(result.broker).toMatchObject({ name: 'postgres', mode: 'default' });
    expect(result.broker.serverVersion).toMatch(/^\d+\.\d+/);
    expect(await relationsWithPrefix(connection('postgres').url!, `bb-${result.runId}`)).toEqual([]);
    // Every receive (an UPDATE) and every ack (a DELETE) leaves a dead row version until a vacuum clears
    // it; the result says how many the run left, read before the tables were dropped.
    const stats = result.queueStats!;
    expect(Object.keys(stats).sort()).toEqual(['autovacuums', 'deadTuples']);
    expect(stats['deadTuples']! > 0 || stats['autovacuums']! > 0).toBe(true);
    expect(printSummary(result, undefined, { width: 400 })).toMatch(/queues after the run\s*│ deadTuples [\d,]+, autovacuums \d+/);
  });

  it.each([1, 2, 3])('crash-recovery, random kill with seed %i: nothing lost, what the victim held came back', async (seed) => {
    const result = await run('crash-recovery', 'postgres', {
      messages: 300, ratePerSec: 400, publishBatch: 10, visibilityTimeoutMs: 1_000, killMode: 'random', seed, task: { ...NO_TASK, durationMs: 40 },
    });
    expect(scenarioValues(result)['killMode']).toBe('random');
    expectRecovered(result);
  });

  it('retry-dlq: completed + dead-lettered = published, as the seeded failures predict', async () => {
    const result = await run('retry-dlq', 'postgres', { messages: 300, retryIntervalsMs: [50, 100], poisonRate: 0.1, task: { ...NO_TASK, failureRate: 0.4 } });
    expect(result.status).toBe('completed');
    const v = scenarioValues(result);
    expect((v['completed'] as number) + (v['deadLettered'] as number)).toBe(300);
    expect(v['balanced']).toBe(true);
    expect(v['deadLettered']).toBe(v['expectedDead']);
    expect(v['deadLettered'] as number).toBeGreaterThan(0);
    expect(v['deliveriesBeyondAttempts']).toBe(0);
    expect(result.finalDepth.dead).toBe(v['deadLettered']);
    const attempts = result.scenarioData!.records['attempts']!;
    expect(attempts.map((a) => a['deliveries'])).toEqual([300, attempts[0]!['failures'], attempts[1]!['failures']]);
  });

  it('delayed: every message arrives, none early, none rounded', async () => {
    const result = await run('delayed', 'postgres', { messages: 300, delayMs: 300, delayWindowMs: 300 });
    expect(result.status).toBe('completed');
    expect(result.ledger).toMatchObject({ completed: 300, lost: 0 });
    const v = scenarioValues(result);
    expect(v['early']).toBe(0);
    expect(v['delivered']).toBe(300);
    expect(result.scenarioData!.histograms['lateness']!.count).toBe(300);
    expect(result.latency.endToEnd.min).toBeGreaterThanOrEqual(300_000 - 1_000);
    expect(result.verdicts[1]).toMatch(/^none delivered early/);
    expect(result.verdicts.some((line) => /rounded/.test(line))).toBe(false);
  });

  it('fan-out: every message reaches both groups (a queue copy each), once each', async () => {
    const result = await run('fan-out', 'postgres', { messages: 1_000, fanOutGroups: 2, consumers: 2 });
    expectFannedOut(result, 1_000, false);
  });

  it('backlog: bytes per waiting message from pg_total_relation_size, then the drain', async () => {
    const result = await run('backlog', 'postgres', { messages: 5_000 });
    const v = scenarioValues(result);
    expect(result.status).toBe('completed');
    expect(result.ledger.lost).toBe(0);
    expect(v['waitingMessages']).toBe(5_000);
    // A 200-byte body plus a row header, four columns and a primary-key entry: more than the body, well under 1 KiB.
    expect(v['bytesPerMessage']).toBeGreaterThan(200);
    expect(v['bytesPerMessage']).toBeLessThan(1_000);
    expect(v['drainPerSec']).toBeGreaterThan(0);
    // Named as PostgreSQL measures them, not with Redis's words.
    const said = result.verdicts.join('\n');
    expect(said).toContain("in the queue's keys (pg_total_relation_size, on disk)");
    expect(said).toContain("by the server's pg_database_size, on disk");
    expect(said).not.toMatch(/MEMORY USAGE|used_memory/);
  });
});

describe('postgres tables', () => {
  it('acks and receives leave dead tuples that pg_stat_user_tables counts, and teardown drops every relation', async () => {
    const { url } = connection('postgres');
    const namespace = `bb-test-${randomUUID().slice(0, 8)}`;
    const broker = await postgresAdapter.open({ namespace, url: url!, commandTimeoutMs: 3_000 });
    try {
      await broker.prepare({ name: 'q', visibilityTimeoutMs: 30_000, maxReceives: 0 });
      await broker.publish('q', Array.from({ length: 500 }, (_, i) => ({ body: `m-${i}` })));
      let acked = 0;
      while (acked < 500) {
        const batch = await broker.receive('q', { maxMessages: 100, waitMs: 1_000 });
        expect(batch.length).toBeGreaterThan(0);
        await broker.ack('q', batch);
        acked += batch.length;
      }
      // A session reports its table statistics at the end of a transaction at most once a second (or after
      // 10 s idle): the depth() calls are transactions on the handle's own session.
      const deadline = Date.now() + 8_000;
      let jobs = (await postgresTableStats(url!, namespace)).find((stats) => stats.table === `${namespace}-q`);
      while ((jobs?.deletedRows ?? 0) < 500 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        await broker.depth('q');
        jobs = (await postgresTableStats(url!, namespace)).find((stats) => stats.table === `${namespace}-q`);
      }
      // Each message: one row version superseded by its receive, one deleted by its ack (vacuum may already have reclaimed some).
      expect(jobs).toMatchObject({ deletedRows: 500, updatedRows: 500 });
      expect(jobs!.deadTuples).toBeGreaterThanOrEqual(0);
      expect(await broker.depth('q')).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
      expect(await relationsWithPrefix(url!, namespace)).toEqual(
        expect.arrayContaining([`${namespace}-q`, `${namespace}-q-dead`, `${namespace}-q-dead_pkey`, `${namespace}-q_pkey`]),
      );
      await broker.teardown('q');
      expect(await relationsWithPrefix(url!, namespace)).toEqual([]);
    } finally {
      await broker.teardown('q').catch(() => undefined);
      await broker.close();
    }
  });

  it('a queue name too long for an identifier gets a table of its own under the namespace, not a cut-off one', async () => {
    const { url } = connection('postgres');
    const namespace = `bb-test-${randomUUID().slice(0, 8)}`;
    const broker = await postgresAdapter.open({ namespace, url: url!, commandTimeoutMs: 3_000 });
    const long = (suffix: string): string => `${'q'.repeat(60)}-${suffix}`;
    try {
      for (const name of [long('a'), long('b')]) await broker.prepare({ name, visibilityTimeoutMs: 30_000, maxReceives: 0 });
      await broker.publish(long('a'), [{ body: 'in a' }]);
      expect(await broker.depth(long('b'))).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
      expect((await broker.receive(long('a'), { maxMessages: 10, waitMs: 1_000 })).map((m) => m.body)).toEqual(['in a']);
      const relations = await relationsWithPrefix(url!, namespace);
      // Two tables per queue, each with its primary key index, and the jobs table's identity sequence.
      expect(relations).toHaveLength(10);
      expect(relations.filter((name) => name.endsWith('-dead'))).toHaveLength(2);
    } finally {
      for (const name of [long('a'), long('b')]) await broker.teardown(name);
      await broker.close();
    }
    expect(await relationsWithPrefix(url!, namespace)).toEqual([]);
  });

  it('a prepare that fails leaves the handle usable (its transaction is rolled back)', async () => {
    const { url } = connection('postgres');
    const namespace = `bb-test-${randomUUID().slice(0, 8)}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    // A view by the queue's table name: CREATE TABLE IF NOT EXISTS skips it, COMMENT ON TABLE then fails inside the transaction.
    await admin.query(`CREATE VIEW "${namespace}-taken" AS SELECT 1 AS one`);
    const broker = await postgresAdapter.open({ namespace, url: url!, commandTimeoutMs: 3_000 });
    try {
      await expect(broker.prepare({ name: 'taken', visibilityTimeoutMs: 30_000, maxReceives: 0 })).rejects.toThrow(/^postgres prepare: .*is not a table/);
      await broker.prepare({ name: 'q', visibilityTimeoutMs: 30_000, maxReceives: 0 });
      await broker.publish('q', [{ body: 'after the failure' }]);
      expect(await broker.depth('q')).toEqual({ ready: 1, inFlight: 0, delayed: 0, dead: 0 });
    } finally {
      await broker.teardown('q').catch(() => undefined);
      await broker.close();
      await admin.query(`DROP VIEW IF EXISTS "${namespace}-taken"`);
      await admin.end();
    }
  });
});

describe('where the server comes from', () => {
  it('a throw-away cluster: initdb, started on a free port, usable, and gone with its files after stop()', async () => {
    const server = await startPostgresServer();
    const port = Number(new URL(server.url).port);
    const broker = await postgresAdapter.open({ namespace: 'bb-test-throwaway', url: server.url, commandTimeoutMs: 3_000 });
    try {
      await broker.prepare({ name: 'q', visibilityTimeoutMs: 30_000, maxReceives: 0 });
      await broker.publish('q', [{ body: 'on the throw-away cluster' }]);
      expect((await broker.receive('q', { maxMessages: 1, waitMs: 1_000 })).map((m) => m.body)).toEqual(['on the throw-away cluster']);
    } finally {
      await broker.close();
      await server.stop();
      await server.stop();
    }
    const reopened = await postgresAdapter.open({ namespace: 'bb-test-throwaway', url: server.url, commandTimeoutMs: 2_000 }).catch((error: Error) => error);
    expect(reopened).toBeInstanceOf(Error);
    expect((reopened as Error).message).toContain(`cannot reach postgres://postgres@127.0.0.1:${port}/postgres (ECONNREFUSED)`);
  }, 90_000);

  it('DATABASE_URL is used as given, and one of another kind is refused in one line', async () => {
    const given = await resolvePostgres({ DATABASE_URL: 'postgres://someone:secret@127.0.0.1:5999/db' });
    expect(given).toMatchObject({ url: 'postgres://someone:secret@127.0.0.1:5999/db', kind: 'local' });
    await expect(resolvePostgres({ DATABASE_URL: 'mysql://u:secret@127.0.0.1/db' })).rejects.toThrow(
      'DATABASE_URL "mysql://u:***@127.0.0.1/db" is not a postgres:// URL, e.g. postgres://postgres@127.0.0.1:5432/postgres',
    );
  });

  it('an unreachable DATABASE_URL: one line naming the server and how to start one, exit 2, password hidden', async () => {
    const cli = await runCli(['scenario', '10', '--results-dir', '/tmp/bb-postgres-unreachable'], {
      QUEUE: 'POSTGRES',
      DATABASE_URL: 'postgres://bench:hunter2@127.0.0.1:1/postgres',
    });
    expect(cli.code).toBe(2);
    const lines = cli.stderr.trim().split('\n');
    expect(lines.filter((line) => line.startsWith('brokerbench:'))).toHaveLength(1);
    expect(lines.at(-1)).toBe(
      'brokerbench: postgres open: cannot reach postgres://bench:***@127.0.0.1:1/postgres (ECONNREFUSED); ' +
        'start PostgreSQL (apt-get install postgresql, or `docker compose up -d postgres`) or set DATABASE_URL',
    );
    expect(cli.stderr).not.toMatch(/hunter2|^\s+at /m);
    expect(cli.stdout).toBe('');
  });
});
