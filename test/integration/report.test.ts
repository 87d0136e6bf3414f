// `compare` and `report` as a user meets them: the real command line on real result files (the
// committed fixtures, and fresh runs of the harness), bad input reported one line per file with exit
// code 2, and the HTML report opened in a real headless chromium (Debian's; `.ci/run` installs it).

import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
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

/**
 * Runs in the page: the colour each chart gives each broker (column label), bars by their label and
 * lines by the broker they belong to, beside the page data's assignment.
 */
const INSPECT_COLOURS = `(() => {
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const drawn = [];
  for (const chart of Object.values(Chart.instances)) {
    const id = chart.canvas.id;
    for (const dataset of chart.data.datasets) {
      if (Array.isArray(dataset.backgroundColor)) chart.data.labels.forEach((label, i) => drawn.push({ id, label, colour: dataset.backgroundColor[i] }));
      else if (dataset.broker) drawn.push({ id, label: dataset.broker, colour: dataset.borderColor });
    }
  }
  return { assigned: data.colours, drawn, charts: Object.values(Chart.instances).map((chart) => chart.canvas.id) };
})()`;

interface Colours {
  readonly assigned: Record<string, string>;
  readonly drawn: { id: string; label: string; colour: string }[];
  readonly charts: string[];
}

/** Every chart colours its brokers, and each broker has the colour the page data assigned it, on every chart. */
function expectOneColourPerBroker({ assigned, drawn, charts }: Colours): void {
  expect(new Set(Object.values(assigned)).size, 'a colour per broker').toBe(Object.keys(assigned).length);
  for (const id of charts) expect(drawn.some((d) => d.id === id), `${id} colours no broker`).toBe(true);
  for (const { id, label, colour } of drawn) expect(`${id}: ${label} ${colour}`).toBe(`${id}: ${label} ${assigned[label]}`);
}

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
    it('opens on the summary, loads offline with no console error, draws every chart in one colour per broker, and takes a screenshot', async () => {
      const out = path.join(dir, 'browser', 'report.html');
      const run = await runCli(['report', FIXTURES + '/same', FIXTURES + '/other', '--out', out]);
      expect(run.code, run.stderr).toBe(0);
      // Opened from a folder of its own: nothing beside it to load.
      const lonely = path.join(dir, 'lonely', 'report.html');
      await mkdir(path.dirname(lonely), { recursive: true });
      await copyFile(out, lonely);

      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
        const problems = watch(page);
        await page.goto(`file://${lonely}`, { waitUntil: 'load' });
        expect(problems).toEqual([]);

        // The summary first, whole in the first screen of 1280 × 800.
        const summary = (await page.locator('#summary').boundingBox())!;
        expect(summary.y).toBeGreaterThanOrEqual(0);
        expect(summary.y + summary.height).toBeLessThanOrEqual(800);
        const order = await page.evaluate(`['#summary', '#contents', '#comparisons', '#runs'].map((s) => document.querySelector(s).getBoundingClientRect().top)`);
        expect(order).toEqual([...(order as number[])].sort((a, b) => a - b));
        // A row per broker and workload, best cells marked, and every run's verdicts as text, none folded away.
        expect(await page.locator('#summary table.answer tbody tr').count()).toBe(1 + 5);
        expect(await page.locator('#summary td.best').count()).toBeGreaterThan(0);
        expect(await page.locator('#summary details').count()).toBe(0);
        const text = await page.locator('#summary').innerText();
        for (const folder of ['same', 'other']) {
          for (const name of await readdir(path.join(FIXTURES, folder))) {
            const { verdicts } = JSON.parse(await readFile(path.join(FIXTURES, folder, name), 'utf8')) as { verdicts: string[] };
            for (const verdict of verdicts) expect(text, name).toContain(verdict);
          }
        }
        expect(text).toMatch(/sqs standard \(2 runs\): ⚠ harness saturated \(harness event-loop p99 72 ms\)/);

        const canvases = (await page.evaluate(INSPECT_CANVASES)) as {
          instances: number;
          list: { id: string; width: number; painted: number; points: number[] }[];
        };
        // Per group: the rate bars and the end-to-end and publish percentile charts; per run: a timeline. 2 groups, 8 runs.
        expect(canvases.list).toHaveLength(2 * 3 + 8);
        expect(canvases.instances).toBe(canvases.list.length);
        for (const canvas of canvases.list) {
          expect(canvas.width, canvas.id).toBeGreaterThan(100);
          expect(canvas.painted, `${canvas.id} is blank`).toBeGreaterThan(2000);
          expect(canvas.points.length, canvas.id).toBeGreaterThan(0);
          for (const n of canvas.points) expect(n, canvas.id).toBeGreaterThan(0);
        }
        const colours = (await page.evaluate(INSPECT_COLOURS)) as Colours;
        expect(Object.keys(colours.assigned)).toEqual(['redis-list reliable', 'redis-list simple', 'redis-stream group', 'sqs fifo', 'sqs standard']);
        expectOneColourPerBroker(colours);
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

    it('draws the scale-out and fixed-rate curves per broker, and a short run\'s timeline in sub-second buckets', async () => {
      // Redis lists and the memory broker on three small workloads each, one command per scenario.
      const out = path.join(dir, 'steps');
      const env = { REDIS_URL: redisUrl(), QUEUE: 'REDIS,MEMORY', CHANNEL_NAME: 'report-test-steps' };
      const runs = [
        ['scenario', '600', '--rate', '1000'], // about 0.6 s: one point per second before
        ['scenario', '400', '--scenario', 'scale-out', '--steps', '1,2', '--task-ms', '1'],
        ['scenario', '--scenario', 'fixed-rate', '--rates', '200,400', '--duration', '1', '--warmup-sec', '0.5'],
      ];
      for (const args of runs) {
        const run = await runCli([...args, '--quiet', '--timeout', '60', '--results-dir', out], env, 120_000);
        expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
      }
      // The results alone: each command also wrote its comparison beside them.
      const results = (await readdir(out)).filter((name) => name.endsWith('.json') && !name.includes('-comparison-')).map((name) => path.join(out, name));
      expect(results).toHaveLength(6);
      const report = path.join(out, 'report.html');
      const made = await runCli(['report', ...results, '--out', report]);
      expect(made.code, made.stderr).toBe(0);

      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
        const problems = watch(page);
        await page.goto(`file://${report}`, { waitUntil: 'load' });
        expect(problems).toEqual([]);
        const charts = (await page.evaluate(`(() => {
          const data = JSON.parse(document.getElementById('report-data').textContent);
          return Object.values(Chart.instances).map((chart) => {
            const spec = [...data.lineCharts, ...data.timelineCharts].find((s) => s.id === chart.canvas.id) || {};
            return { id: chart.canvas.id, title: spec.title || '', bucketMs: spec.bucketMs, datasets: chart.data.datasets.map((d) => ({ label: d.label, points: d.data.length, xs: d.data.map((p) => p.x), ys: d.data.map((p) => p.y) })) };
          });
        })()`)) as { id: string; title: string; bucketMs?: number; datasets: { label: string; points: number; xs: number[]; ys: number[] }[] }[];
        const curves = charts.filter((chart) => chart.id.endsWith('-curve'));
        expect(curves.map((chart) => chart.title.split(' (')[0])).toEqual(['End-to-end p99 against the offered rate', 'Completion rate against consumers']);
        // Each broker's line is its run's recorded steps: rates tried (200/s, then 400/s if 200/s held) or consumer counts.
        const recorded = new Map<string, { x: number; y: number }[]>();
        const throughputRuns: string[] = [];
        for (const file of results) {
          const result = JSON.parse(await readFile(file, 'utf8')) as {
            runId: string;
            scenario: string;
            broker: { name: string; mode: string };
            scenarioData?: { records: Record<string, Record<string, number>[]> };
          };
          const steps = result.scenario === 'fixed-rate'
            ? result.scenarioData!.records['rates']!.map((r) => ({ x: r['ratePerSec']!, y: r['endToEndP99Us']! / 1000 }))
            : result.scenario === 'scale-out'
              ? result.scenarioData!.records['steps']!.map((r) => ({ x: r['consumers']!, y: r['completePerSec']! }))
              : [];
          if (result.scenario === 'throughput') throughputRuns.push(result.runId);
          if (steps.length > 0) recorded.set(`${result.scenario} ${result.broker.name} ${result.broker.mode}`, steps);
        }
        for (const curve of curves) {
          expect(curve.datasets.map((d) => d.label), curve.id).toEqual(['memory default', 'redis-list reliable']);
          const scenario = curve.title.startsWith('End-to-end') ? 'fixed-rate' : 'scale-out';
          for (const dataset of curve.datasets) {
            const steps = recorded.get(`${scenario} ${dataset.label}`)!;
            expect(steps[0]!.x).toBe(scenario === 'fixed-rate' ? 200 : 1);
            expect(dataset.xs, `${curve.id} ${dataset.label}`).toEqual(steps.map((step) => step.x));
            expect(dataset.ys, `${curve.id} ${dataset.label}`).toEqual(steps.map((step) => step.y));
          }
        }
        expect(recorded.get('scale-out redis-list reliable')!.map((step) => step.x)).toEqual([1, 2]);
        // Every run's timeline in 100 ms buckets; the throughput runs, whose last message was due 599 ms
        // after the first (600 at 1,000/s), as a point per bucket (one point per second before).
        const timelines = charts.filter((chart) => chart.bucketMs !== undefined);
        expect(timelines).toHaveLength(6);
        for (const timeline of timelines) {
          expect(timeline.bucketMs, timeline.title).toBe(100);
          expect(timeline.datasets[0]!.label).toBe('completed/s');
        }
        const short = timelines.filter((timeline) => throughputRuns.some((runId) => timeline.title.endsWith(`(run ${runId})`)));
        expect(short).toHaveLength(2);
        for (const timeline of short) expect(timeline.datasets[0]!.points, timeline.title).toBeGreaterThanOrEqual(6);
        expectOneColourPerBroker((await page.evaluate(INSPECT_COLOURS)) as Colours);
        const canvases = (await page.evaluate(INSPECT_CANVASES)) as { list: { id: string; painted: number }[] };
        for (const canvas of canvases.list) expect(canvas.painted, `${canvas.id} is blank`).toBeGreaterThan(2000);
      } finally {
        await browser.close();
      }
    }, 600_000);
  });
});

/** Console errors, page errors and any request off the file system, as they come. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    // Errors only: chromium's own performance warnings vary by machine and GPU.
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('request', (request) => {
    if (!request.url().startsWith('file:')) problems.push(`network request: ${request.url()}`);
  });
  return problems;
}
