// Result files are anyone's to write: compare and report read them as data, never as instructions.
// Escape sequences in their strings must not reach the terminal.

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRuns } from '../../src/report/load.ts';
import { runCli } from '../helpers/cli.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/results/same', import.meta.url));
/** Clear the screen, set the window title, ring the bell, and a C1 control. */
const HOSTILE = '\u001b[2J\u001b]0;owned\u0007\u009b31m';
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-hostile-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A copy of a real result file with `change` applied, in a folder of its own. */
async function crafted(name: string, change: (result: Record<string, any>) => void): Promise<string> {
  const folder = path.join(dir, name);
  await mkdir(folder, { recursive: true });
  const [source] = (await readdir(FIXTURES)).filter((file) => file.includes('redis-list-reliable'));
  const result = JSON.parse(await readFile(path.join(FIXTURES, source!), 'utf8')) as Record<string, any>;
  change(result);
  await writeFile(path.join(folder, source!), JSON.stringify(result));
  return folder;
}

describe('strings from a result file', () => {
  it('reach the terminal without their control characters', async () => {
    const folder = await crafted('controls', (result) => {
      result['broker']['name'] = `redis-list${HOSTILE}`;
      result['broker']['serverVersion'] = `7.0${HOSTILE}`;
      result['errors'] = [`publish: boom${HOSTILE}`];
      result['verdicts'] = [`all good${HOSTILE}`];
    });
    for (const format of ['table', 'md']) {
      const run = await runCli(['compare', folder, '--format', format]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('redis-list');
      expect(run.stdout).not.toMatch(CONTROL);
      expect(run.stderr).not.toMatch(CONTROL);
    }
  });
});

describe('a result whose fields have the wrong types', () => {
  const cases: [string, (result: Record<string, any>) => void, string][] = [
    ['verdicts a string', (result) => (result['verdicts'] = 'all good'), 'verdicts'],
    ['a ledger count a string', (result) => (result['ledger']['lost'] = '0'), 'ledger.lost'],
    ['a timeline point null', (result) => (result['timeline'][0] = null), 'timeline[0]'],
    ['the broker name a number', (result) => (result['broker']['name'] = 7), 'broker.name'],
  ];
  it.each(cases)('%s: refused on load in one line naming the file and the field', async (name, change, field) => {
    const folder = await crafted(`types-${name.replace(/\W+/g, '-')}`, change);
    const [file] = await readdir(folder);
    const { runs, problems } = await loadRuns([folder]);
    expect(runs).toEqual([]);
    expect(problems).toEqual([`${path.join(folder, file!)}: not a result brokerbench can read: ${field}: ${problems[0]!.split(`${field}: `)[1]}`]);
    expect(problems[0]!.split(`${field}: `)[1]).toMatch(/^Invalid input: expected \w+, received \w+$/);
  });

  it('compare and report say so in that one line, exit 2, no stack trace', async () => {
    const folder = await crafted('types-cli', cases[0]![1]);
    for (const args of [['compare', folder], ['report', folder, '--out', path.join(folder, 'report.html')]]) {
      const run = await runCli(args);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).not.toMatch(/TypeError|^\s+at /m);
      expect(run.stderr).toMatch(/: not a result brokerbench can read: verdicts: Invalid input: expected array, received string\n/);
    }
  });
});
