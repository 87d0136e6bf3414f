// Fault: Ctrl-C (SIGINT) or SIGTERM during a real run of the CLI. The run stops publishing, lets the
// work in hand finish, writes its result marked `interrupted` with what it measured, removes its
// queues and exits 130. A second signal quits at once, without a result.

import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readResult } from '../../src/report/result-file.ts';
import { sleep, startCli, waitFor } from '../helpers/faults.ts';
import type { Launch } from '../helpers/cli.ts';
import { keysWithPrefix, redisUrl } from '../helpers/redis.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-signals-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Starts a paced run that would take about 10 s, and waits until it is publishing. */
async function startLongRun(out: string, channel: string, taskMs: number, launch: Launch = 'node') {
  const cli = startCli(
    ['scenario', '5000', '--rate', '500', '--batch', '10', '--consumers', '2', '--receive-batch', '5',
      '--task-ms', String(taskMs), '--results-dir', out],
    { QUEUE: 'REDIS', REDIS_URL: redisUrl(), CHANNEL_NAME: channel },
    60_000,
    launch,
  );
  await waitFor('the run phase', () => /^run: /m.test(cli.stderr()), 30_000);
  await sleep(1000);
  return cli;
}

// Ctrl-C in a terminal signals the whole process group at once; under `npm run` npm forwards it to
// the program as well, so one keypress arrives twice. That must count as one interrupt, not as the
// second one that quits without a result; so must the same signal sent twice a few ms apart.
const cases = [
  { name: 'SIGINT', signal: 'SIGINT', send: 'process', launch: 'node' },
  { name: 'SIGTERM', signal: 'SIGTERM', send: 'process', launch: 'node' },
  { name: 'SIGINT twice a few ms apart', signal: 'SIGINT', send: 'twice', launch: 'node' },
  { name: 'SIGINT to the process group of npm run (Ctrl-C in a terminal)', signal: 'SIGINT', send: 'group', launch: 'npm' },
] as const;

describe.each(cases)('$name during a run', ({ signal, send, launch }) => {
  it('writes the result marked interrupted, removes the queues and exits 130', async () => {
    const out = path.join(dir, `${signal}-${send}-${launch}`);
    const cli = await startLongRun(out, `sig-${signal.toLowerCase()}`, 200, launch);
    const signalledAt = performance.now();
    if (send === 'group') {
      process.kill(-cli.child.pid!, signal);
    } else {
      cli.child.kill(signal);
      if (send === 'twice') {
        await sleep(5);
        cli.child.kill(signal);
      }
    }
    const run = await cli.done;
    const stopMs = performance.now() - signalledAt;
    // npm, once the program has exited, raises the signal on itself, which a shell reports as 130 too.
    if (launch === 'npm') expect(run.signal, run.stderr).toBe(signal);
    else expect(run.code, run.stderr).toBe(130);
    expect(run.stderr).toContain(`${signal}: stopping`);
    expect(run.stderr).not.toContain('again: quitting at once');
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(run.stdout).toMatch(/: interrupted\n/);
    // Generous bound for a loaded machine; the point is "seconds, not the 10 s the run had left".
    expect(stopMs).toBeLessThan(8000);

    const names = await readdir(out);
    expect(names.filter((name) => name.endsWith('.tmp'))).toEqual([]);
    const files = names.filter((name) => name.endsWith('.json'));
    expect(files).toHaveLength(1);
    const result = await readResult(path.join(out, files[0]!));
    expect(result.status).toBe('interrupted');
    expect(result.reason).toBe('interrupted by signal');
    const { ledger } = result;
    const published = ledger.expected - ledger.publishFailed - (ledger.notSent ?? 0);
    expect(published).toBeGreaterThan(0);
    expect(ledger.notSent).toBeGreaterThan(0); // it stopped publishing
    expect(ledger.completed).toBeGreaterThan(0);
    // Work in hand (200 ms tasks) finished inside the grace and was acked: no ack failed.
    expect(result.counters.ackErrors).toBe(0);
    expect(ledger.completed + ledger.lost).toBe(published);
    expect(result.verdicts.join('\n')).toMatch(/never sent: the run stopped first/);
    expect(result.latency.endToEnd.count).toBeGreaterThan(0);
    // Teardown ran: nothing of the run is left in Redis.
    expect(await keysWithPrefix(`bb-${result.runId}:`)).toEqual([]);
  });
});

describe('a second Ctrl-C', () => {
  it('quits at once, while the first is still letting work in hand finish', async () => {
    const out = path.join(dir, 'twice');
    const channel = `sig-twice-${randomUUID().slice(0, 6)}`;
    // Tasks of 20 s: the first signal's grace (2 s) is still running when the second comes.
    const cli = await startLongRun(out, channel, 20_000);
    const signalledAt = performance.now();
    cli.child.kill('SIGINT');
    await waitFor('the first signal to be seen', () => cli.stderr().includes('SIGINT: stopping'), 10_000);
    // Past the window in which a signal is taken for the same Ctrl-C delivered twice.
    await sleep(700);
    cli.child.kill('SIGINT');
    const run = await cli.done;
    const stopMs = performance.now() - signalledAt;
    try {
      expect(run.code).toBe(130);
      expect(run.stderr).toContain('SIGINT again: quitting at once; no result written');
      expect(run.stdout).toBe('');
      expect(stopMs).toBeLessThan(8000);
      // Quitting at once means no result: the first signal alone would have written one.
      expect((await readdir(out)).filter((name) => name.endsWith('.json'))).toEqual([]);
    } finally {
      // Quitting at once leaves the run's keys behind, as the message says: remove them here.
      const client = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
      const stream = client.scanStream({ match: `bb-*:${channel}:*`, count: 1000 });
      for await (const keys of stream) if ((keys as string[]).length > 0) await client.del(...(keys as string[]));
      await client.quit();
    }
  });
});
