// `compare` and `report` as a user meets them: the real command line on real result files (the
// committed fixtures, and fresh runs of the harness), bad input reported one line per file with exit
// code 2, and the HTML report opened in a real headless chromium (Debian's; `.ci/run` installs it).

import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { redisUrl } from '../helpers/redis.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/results', import.meta.url));
const SAME = path.join(FIXTURES, 'same');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Runs in the page (as text: the project's TypeScript has no DOM types): each canvas's painted pixels and chart data. */
const INSPECT_CANVASES = `(() => ({
  instances: Object.keys(Chart.instances).length,
  list: [...document.querySelectorAll('canvas')].map((canvas) => {
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let k = 3; k < pixels.length; k += 4) if (pixels[k] > 0) painted++;
    const chart = Chart.getChart(canvas);
    return { id: canvas.id, width: canvas.width, painted, points: chart ? chart.data.datasets.map((d) => d.data.length) : [] };
  }),
}))()`;

let dir: string;
let timedOut: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-report-'));
  const folder = path.join(FIXTURES, 'timeout');
  timedOut = path.join(folder, (await readdir(folder))[0]!);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Bad inputs of every kind the issue names, made from a real result where one is needed. */
interface BadInputs {
  readonly missing: string;
  readonly notJson: string;
  readonly otherJson: string;
  readonly futureVersion: string;
  readonly timedOut: string;
}

async function badInputs(): Promise<BadInputs> {
  const bad = path.join(dir, `bad-${Math.random().toString(36).slice(2)}`);
  await mkdir(bad);
  const real = JSON.parse(await readFile(path.join(SAME, (await readdir(SAME))[0]!), 'utf8')) as Record<string, unknown>;
  const files = {
    missing: path.join(bad, 'no-such-result.json'),
    notJson: path.join(bad, 'notes.json'),
    otherJson: path.join(bad, 'package.json'),
    futureVersion: path.join(bad, 'future.json'),
    timedOut,
  };
  await writeFile(files.notJson, 'throughput was fine\n');
  await writeFile(files.otherJson, '{"name": "not-a-result"}\n');
  await writeFile(files.futureVersion, JSON.stringify({ ...real, schemaVersion: 99 }));
  return files;
}

describe('npm run compare', () => {
  it('prints one table per workload, a column per broker, best marked, the price dated', async () => {
    const run = await runCli(['compare', FIXTURES + '/same', FIXTURES + '/other'], { COLUMNS: '400' });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^throughput: 500 messages of 200 B/);
    expect(run.stdout).toMatch(/\nthroughput: 1,000 messages of 200 B, publish batch 10 × 4 in flight/);
    expect(run.stdout).toMatch(/│ +│ redis-list reliable +│ redis-list simple +│ redis-stream group +│ sqs fifo +│ sqs standard +│/);
    expect(run.stdout).toMatch(/│ runs merged +│ 2 +│ 1 +│ 1 +│ 1 +│ 2 +│/);
    expect(run.stdout).toMatch(/│ request cost per 1M messages +│ n\/a +│ n\/a +│ n\/a +│ \$[\d.]+ \(FIFO \$0\.50\/M\) +│ \$[\d.]+ \(standard \$0\.40\/M\) \* +│/);
    expect(run.stdout).toMatch(/prices may change/);
  });

  it('prints Markdown and JSON', async () => {
    const md = await runCli(['compare', SAME, '--format', 'md']);
    expect(md.code).toBe(0);
    expect(md.stdout).toMatch(/^### throughput: 1,000 messages/);
    expect(md.stdout).toMatch(/\n\|  \| redis-list reliable \| redis-list simple \| redis-stream group \| sqs fifo \| sqs standard \|\n\| --- \| ---: /);
    const json = await runCli(['compare', SAME, '--format', 'json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { groups: { columns: { label: string; runs: unknown[] }[] }[] };
    expect(parsed.groups).toHaveLength(1);
    expect(parsed.groups[0]!.columns.map((c) => c.runs.length)).toEqual([2, 1, 1, 1, 2]);
  });

  it('compares fresh runs of the harness, merging two runs of one configuration', async () => {
    const out = path.join(dir, 'fresh');
    const env = { REDIS_URL: redisUrl(), QUEUE: 'REDIS', CHANNEL_NAME: 'report-test' };
    for (let k = 0; k < 2; k++) {
      const run = await runCli(['scenario', '500', '--quiet', '--results-dir', out], env);
      expect(run.code, run.stderr).toBe(0);
    }
    const compared = await runCli(['compare', out, '--format', 'json', '--hgrm', path.join(out, 'hgrm')]);
    expect(compared.code, compared.stderr).toBe(0);
    const parsed = JSON.parse(compared.stdout) as {
      groups: { columns: { label: string; runs: unknown[]; latencyUs: { endToEnd: { count: number } }; throughputPerSec: { completion: { min: number; median: number; max: number } } }[] }[];
    };
    const column = parsed.groups[0]!.columns[0]!;
    expect(column.label).toBe('redis-list reliable');
    expect(column.runs).toHaveLength(2);
    expect(column.latencyUs.endToEnd.count).toBe(1000);
    const { min, median, max } = column.throughputPerSec.completion;
    expect(min).toBeLessThanOrEqual(median);
    expect(median).toBeLessThanOrEqual(max);
    expect(compared.stderr).toMatch(/^brokerbench compare: wrote 9 \.hgrm files \(values in ms\) to .*hgrm\n$/);
    expect((await readdir(path.join(out, 'hgrm'))).filter((n) => n.startsWith('merged-'))).toHaveLength(3);
  });

  it('names each bad file on one line, still compares the good ones, and exits 2', async () => {
    const bad = await badInputs();
    const good = path.join(SAME, (await readdir(SAME)).find((n) => n.includes('redis-list-simple'))!);
    const run = await runCli(['compare', bad.missing, good, bad.notJson, bad.otherJson, bad.futureVersion, bad.timedOut], { COLUMNS: '400' });
    expect(run.code).toBe(2);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines).toEqual([
      `brokerbench compare: ${bad.missing}: no such file`,
      `brokerbench compare: ${bad.notJson}: not JSON, so not a brokerbench result`,
      `brokerbench compare: ${bad.otherJson}: not a brokerbench result (no "schema": "brokerbench/result")`,
      `brokerbench compare: ${bad.futureVersion}: result schema version 99 is not one this brokerbench reads (1)`,
      expect.stringMatching(new RegExp(`^brokerbench compare: ${bad.timedOut.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: run did not complete: timeout`)),
    ]);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(run.stdout).toMatch(/│ +│ redis-list simple +│/);
    expect(run.stdout).toMatch(/│ runs merged +│ 1 +│/);
  });

  it('exits 2 with nothing on stdout when no file can be used', async () => {
    const bad = await badInputs();
    const run = await runCli(['compare', bad.missing, bad.notJson]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(2);
    const empty = path.join(dir, 'empty-folder');
    await mkdir(empty);
    const none = await runCli(['compare', empty]);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(`brokerbench compare: ${empty}: folder holds no .json result files\n`);
  });
});

describe('npm run report', () => {
  it('writes one HTML file, naming bad files and exiting 2 when given some', async () => {
    const out = path.join(dir, 'with-bad', 'report.html');
    const bad = await badInputs();
    const run = await runCli(['report', SAME, bad.notJson, '--out', out]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`^brokerbench report: ${bad.notJson.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not JSON`));
    expect(run.stderr).toMatch(/brokerbench report: wrote .*report\.html: 1 group\(s\), 7 run\(s\)\n$/);
    const html = await readFile(out, 'utf8');
    expect(html).toContain('Files left out');
    expect(html).toContain('notes.json: not JSON');
    // Self-contained: Chart.js inlined, nothing fetched.
    expect(html).toContain('Chart.js v4.6.1');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/cdn/);
    const none = await runCli(['report', bad.missing, '--out', path.join(dir, 'none', 'report.html')]);
    expect(none.code).toBe(2);
    expect(existsSync(path.join(dir, 'none', 'report.html'))).toBe(false);
  });

  const haveChromium = existsSync(CHROMIUM);
  describe.skipIf(!haveChromium)(`in headless chromium (${haveChromium ? CHROMIUM : `skipped: no chromium at ${CHROMIUM}; .ci/run installs Debian's`})`, () => {
    it('loads offline with no console error, draws every chart, and takes a screenshot', async () => {
      const out = path.join(dir, 'browser', 'report.html');
      const run = await runCli(['report', FIXTURES + '/same', FIXTURES + '/other', '--out', out]);
      expect(run.code, run.stderr).toBe(0);
      // Opened from a folder of its own: nothing beside it to load.
      const lonely = path.join(dir, 'lonely', 'report.html');
      await mkdir(path.dirname(lonely), { recursive: true });
      await copyFile(out, lonely);

      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
      try {
        const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
        const problems: string[] = [];
        page.on('console', (message) => {
          // Errors only: chromium's own performance warnings vary by machine and GPU.
          if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
        });
        page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
        page.on('request', (request) => {
          if (!request.url().startsWith('file:')) problems.push(`network request: ${request.url()}`);
        });
        await page.goto(`file://${lonely}`, { waitUntil: 'load' });
        const canvases = (await page.evaluate(INSPECT_CANVASES)) as {
          instances: number;
          list: { id: string; width: number; painted: number; points: number[] }[];
        };
        expect(problems).toEqual([]);
        // Per group: end-to-end and publish percentile charts; per run: a timeline. 2 groups, 8 runs.
        expect(canvases.list).toHaveLength(2 * 2 + 8);
        expect(canvases.instances).toBe(canvases.list.length);
        for (const canvas of canvases.list) {
          expect(canvas.width, canvas.id).toBeGreaterThan(100);
          expect(canvas.painted, `${canvas.id} is blank`).toBeGreaterThan(2000);
          expect(canvas.points.length, canvas.id).toBeGreaterThan(0);
          for (const n of canvas.points) expect(n, canvas.id).toBeGreaterThan(0);
        }
        const table = await page.locator('table.compare').nth(1).innerText();
        expect(table).toMatch(/sqs fifo/);
        // The log/linear switch redraws without error.
        await page.locator('#log-y').uncheck();
        expect(problems).toEqual([]);

        const shot = path.join(dir, 'browser', 'report.png');
        await page.screenshot({ path: shot, fullPage: true });
        const png = await readFile(shot);
        expect(png.subarray(0, 8).toString('latin1')).toBe('\x89PNG\r\n\x1a\n');
        expect((await stat(shot)).size).toBeGreaterThan(50_000);
      } finally {
        await browser.close();
      }
    });
  });
});
