// Result files are anyone's to write: compare and report read them as data, never as instructions.
// Escape sequences in their strings must not reach the terminal.

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
