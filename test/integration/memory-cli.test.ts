// QUEUE=memory from the real command line with no server anywhere: REDIS_URL and SQS_ENDPOINT point at
// a dead port, and the run still completes; runs that need consumer processes end in one line, exit 2.

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/services/children.ts';
import { runCli } from '../helpers/cli.ts';

let dir = '';
let noServer: Record<string, string> = {};
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-memory-'));
  const port = await freePort('127.0.0.1');
  noServer = { QUEUE: 'memory', REDIS_URL: `redis://127.0.0.1:${port}`, SQS_ENDPOINT: `http://127.0.0.1:${port}` };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('QUEUE=memory on the command line', () => {
  it('runs a scenario with no server and writes its result', async () => {
    const out = path.join(dir, 'run');
    const run = await runCli(['scenario', '1500', '--quiet', '--results-dir', out], noServer);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('nothing lost: 1,500 of 1,500 published messages completed');
    expect(await readdir(out)).toEqual([expect.stringMatching(/-memory-default-throughput-1500\.json$/)]);
  });

  it.each([
    ['crash-recovery', ['--scenario', 'crash-recovery']],
    ['scale-out --scale-by processes', ['--scenario', 'scale-out', '--scale-by', 'processes']],
  ])('refuses %s in one line, exit 2: consumer processes cannot share its memory', async (_name, args) => {
    const run = await runCli(['scenario', ...args, '--quiet', '--results-dir', path.join(dir, 'refused')], noServer);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^brokerbench: memory keeps its queues in this process, so consumer processes cannot reach them: [^\n]+\n$/);
  });
});
