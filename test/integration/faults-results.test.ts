// Fault: the harness's own results at risk. A result is written to a temporary file and linked to its
// name, so an existing result is never overwritten (the same name gets -2, -3 …) and a failed write
// leaves no temporary file; a folder that cannot take results fails the run before it connects; and a
// folder that breaks during the run does not cost the measurement (it goes to the temporary directory).

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readResult, resultBaseName, writeResult, type ResultFile } from '../../src/report/result-file.ts';
import { runCli } from '../helpers/cli.ts';
import { startBlackHole, startCli, waitFor } from '../helpers/faults.ts';
import { redisUrl } from '../helpers/redis.ts';

let dir: string;
let sample: ResultFile;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-results-'));
  // One real result to write again and again.
  const out = path.join(dir, 'sample');
  const run = await runCli(['scenario', '200', '--results-dir', out, '--quiet'], { QUEUE: 'REDIS', REDIS_URL: redisUrl(), CHANNEL_NAME: 'results' });
  expect(run.code, run.stderr).toBe(0);
  const [file] = (await readdir(out)).filter((name) => name.endsWith('.json'));
  sample = await readResult(path.join(out, file!));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = async (file: string): Promise<string> => createHash('sha256').update(await readFile(file)).digest('hex');

describe('writing a result', () => {
  it('never overwrites one with the same name: the next gets -2, -3, and the first is unchanged', async () => {
    const out = path.join(dir, 'same-name');
    const first = await writeResult(out, sample);
    const before = await sha(first);
    // Written at once, as two runs finishing in the same second would.
    const [second, third] = await Promise.all([writeResult(out, sample), writeResult(out, sample)]);
    const base = resultBaseName(sample);
    expect(first).toBe(path.join(out, `${base}.json`));
    expect([second, third].sort()).toEqual([path.join(out, `${base}-2.json`), path.join(out, `${base}-3.json`)]);
    expect(await sha(first)).toBe(before);
    expect((await readdir(out)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    expect((await readResult(second!)).runId).toBe(sample.runId);
  });

  it('leaves no temporary file and touches nothing when every name is taken', async () => {
    const out = path.join(dir, 'all-taken');
    await mkdir(out);
    const base = resultBaseName(sample);
    await writeFile(path.join(out, `${base}.json`), 'a file someone keeps');
    for (let k = 2; k < 1000; k++) await writeFile(path.join(out, `${base}-${k}.json`), String(k));
    await expect(writeResult(out, sample)).rejects.toThrow(/too many results named/);
    const names = await readdir(out);
    expect(names.filter((name) => name.endsWith('.tmp'))).toEqual([]);
    expect(names).toHaveLength(999);
    expect(await readFile(path.join(out, `${base}.json`), 'utf8')).toBe('a file someone keeps');
  });
});

describe('a results folder that cannot take results', () => {
  it('fails before the run connects to anything: one line, exit 2', async () => {
    const hole = await startBlackHole();
    try {
      // Not even root can make a folder in /proc. The broker is a black hole: reaching it would hang for 3 s.
      const run = await runCli(['scenario', '10', '--results-dir', '/proc/brokerbench-results'], {
        QUEUE: 'REDIS',
        REDIS_URL: `redis://127.0.0.1:${hole.port}`,
      });
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/^brokerbench: cannot write results to \/proc\/brokerbench-results \(\w+\); choose another folder with --results-dir\n$/);
      expect(run.stdout).toBe('');
      expect(hole.accepted()).toBe(0);
    } finally {
      await hole.close();
    }
  });

  it('report --out and compare --hgrm under /proc fail in one line instead of hanging in a recursive mkdir', async () => {
    const fixtures = fileURLToPath(new URL('../fixtures/results/same', import.meta.url));
    const report = await runCli(['report', fixtures, '--out', '/proc/brokerbench-x/report.html']);
    expect(report.code).toBe(2);
    expect(report.stderr).toMatch(/^brokerbench: cannot write the report to \/proc\/brokerbench-x\/report\.html \(\w+\); choose another path with --out\n$/);
    const hgrm = await runCli(['compare', fixtures, '--hgrm', '/proc/brokerbench-x/h']);
    expect(hgrm.code).toBe(2);
    expect(hgrm.stderr).toMatch(/^brokerbench: cannot write \.hgrm files to \/proc\/brokerbench-x\/h \(\w+\); choose another folder with --hgrm\n$/);
  });

  it('breaking during the run does not lose it: the result goes to the temporary directory, said on stderr', async () => {
    const out = path.join(dir, 'breaks');
    const temporary = path.join(dir, 'tmp');
    await mkdir(temporary);
    const cli = startCli(
      ['scenario', '3000', '--rate', '2000', '--results-dir', out],
      { QUEUE: 'REDIS', REDIS_URL: redisUrl(), CHANNEL_NAME: 'results-breaks', TMPDIR: temporary },
    );
    // The folder was checked and made before the run; once it runs, something puts a file where it was.
    await waitFor('the run phase', () => /^run: /m.test(cli.stderr()), 30_000);
    await rm(out, { recursive: true, force: true });
    await writeFile(out, 'not a folder any more');
    const run = await cli.done;
    expect(run.code, run.stderr).toBe(0);
    const fallback = path.join(temporary, 'brokerbench-results');
    const [file] = (await readdir(fallback)).filter((name) => name.endsWith('.json'));
    expect(run.stderr).toContain(`brokerbench: cannot write results to ${out} (ENOTDIR); wrote ${path.join(fallback, file!)} instead`);
    expect(run.stdout).toContain(`result: ${path.join(fallback, file!)}`);
    const result = await readResult(path.join(fallback, file!));
    expect(result.status).toBe('completed');
    expect(result.ledger.completed).toBe(3000);
  });
});
