// Dead letters are not losses, in every report: a real retry-dlq run through the command line (on the
// real Redis), then `compare` and `report` on its result file. Before one definition of lost existed,
// the summary said lost 0 but compare and report summed the raw ledger and showed `lost 20` beside
// `dead-lettered 20`. A copy of the file without the `lost` field (as files written before it) must
// read the same.

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lostOf, readResult, type ResultFile } from '../../src/report/result-file.ts';
import { runCli } from '../helpers/cli.ts';
import { redisUrl } from '../helpers/redis.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/results', import.meta.url));

let dir: string;
let file: string;
let result: ResultFile;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-dead-letters-'));
  const out = path.join(dir, 'run');
  const env = { REDIS_URL: redisUrl(), QUEUE: 'REDIS', CHANNEL_NAME: 'dead-letters-test', COLUMNS: '400' };
  // 200 messages, 10% poison: every poison message fails all 3 attempts and is dead-lettered.
  const run = await runCli(['scenario', '200', '--scenario', 'retry-dlq', '--retry-intervals', '0.05,0.1', '--poison-rate', '0.1', '--results-dir', out], env, 120_000);
  expect(run.code, run.stderr).toBe(0);
  const names = (await readdir(out)).filter((name) => name.endsWith('.json'));
  expect(names).toHaveLength(1);
  file = path.join(out, names[0]!);
  result = await readResult(file);
  expect(result.status).toBe('completed');
  expect(result.finalDepth.dead).toBeGreaterThan(0);
  // The summary already told them apart; the books balance with the dead letters in them.
  expect(run.stdout).toMatch(/│ lost +│ 0 +│/);
  expect(run.stdout).toMatch(new RegExp(`│ dead-lettered +│ ${result.finalDepth.dead} +│`));
}, 180_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a retry-dlq result', () => {
  it('records lost 0 beside the dead-lettered count (the ledger alone still sees them as not completed)', () => {
    expect(result.ledger.lost).toBe(result.finalDepth.dead);
    expect(result.lost).toBe(0);
    expect(lostOf(result)).toBe(0);
  });

  it('compare shows lost 0 next to the dead-lettered count, in every format', async () => {
    const dead = result.finalDepth.dead;
    const table = await runCli(['compare', file], { COLUMNS: '400' });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/│ lost +│ 0 +│/);
    expect(table.stdout).toMatch(new RegExp(`│ dead-lettered +│ ${dead} +│`));
    const json = await runCli(['compare', file, '--format', 'json']);
    expect(json.code, json.stderr).toBe(0);
    const column = (JSON.parse(json.stdout) as { groups: { columns: { lost: number; deadLettered: number }[] }[] }).groups[0]!.columns[0]!;
    expect(column).toMatchObject({ lost: 0, deadLettered: dead });
  });

  it('report shows lost 0 next to the dead-lettered count', async () => {
    const out = path.join(dir, 'report.html');
    const run = await runCli(['report', file, '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    const html = await readFile(out, 'utf8');
    const cell = (label: string): string | undefined =>
      new RegExp(`<th scope="row">${label}</th><td[^>]*>(?:<strong>)?([^<]*)`).exec(html)?.[1];
    expect(cell('lost')).toBe('0');
    expect(cell('dead-lettered')).toBe(String(result.finalDepth.dead));
  });

  it('means the same when read from a file written before results stored lost', async () => {
    const { lost: _stored, ...older } = result;
    const oldFile = path.join(dir, 'older', path.basename(file));
    await mkdir(path.dirname(oldFile));
    await writeFile(oldFile, JSON.stringify(older));
    const json = await runCli(['compare', oldFile, '--format', 'json']);
    expect(json.code, json.stderr).toBe(0);
    const column = (JSON.parse(json.stdout) as { groups: { columns: { lost: number; deadLettered: number }[] }[] }).groups[0]!.columns[0]!;
    expect(column).toMatchObject({ lost: 0, deadLettered: result.finalDepth.dead });
  });
});

describe('the committed result fixtures', () => {
  it("mean the same lost as before: no dead letters in them, so lost is the ledger's", async () => {
    for (const folder of ['same', 'other']) {
      for (const name of await readdir(path.join(FIXTURES, folder))) {
        const fixture = await readResult(path.join(FIXTURES, folder, name));
        expect(fixture.lost).toBeUndefined();
        expect(lostOf(fixture)).toBe(fixture.ledger.lost);
      }
    }
  });
});
