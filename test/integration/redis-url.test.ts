// REDIS_URL with a generated password: one with a character URLs reserve is refused in one line that
// shows how to percent-encode it, never echoing it; percent-encoded, it works against a real server.

import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer } from '../../src/services/redis-server.ts';
import { runCli } from '../helpers/cli.ts';

const PASSWORD = 'pa/ss#w?rd@x%y1';

let dir: string;
let server: Awaited<ReturnType<typeof startRedisServer>>;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-redis-url-'));
  server = await startRedisServer({ args: ['--requirepass', PASSWORD] });
});
afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('REDIS_URL', () => {
  const raw = [
    ['/', 'pass/word1234'],
    ['#', 'pass#word1234'],
    ['?', 'pass?word1234'],
    ['@', 'pass@word1234'],
    ['a % that starts no escape', 'pass%zzword12'],
  ];
  it.each(raw)('with %s unencoded in the password: one line on how to percent-encode it, exit 2, the password never shown', async (_name, password) => {
    const out = path.join(dir, 'refused');
    const run = await runCli(['scenario', '10', '--results-dir', out], { QUEUE: 'REDIS', REDIS_URL: `redis://:${password}@127.0.0.1:${server.port}` });
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr.trim().split('\n')).toEqual([
      'brokerbench: REDIS_URL: its user name or password has a character URLs reserve; percent-encode it (/ %2F, ? %3F, # %23, @ %40, % %25), e.g. redis://:p%40ss%2Fw0rd@127.0.0.1:6379',
    ]);
    expect(`${run.stdout}${run.stderr}`).not.toContain(password);
    expect((await readdir(out).catch(() => [])).filter((name) => name.endsWith('.json'))).toEqual([]);
  });

  it('naming a database that is not a number: one line, exit 2', async () => {
    const run = await runCli(['scenario', '10', '--results-dir', path.join(dir, 'db')], { QUEUE: 'REDIS', REDIS_URL: `redis://127.0.0.1:${server.port}/abc` });
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/^brokerbench: REDIS_URL "redis:\/\/127\.0\.0\.1:\d+\/abc" names database "abc", which is not a number/);
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  it('with the same password percent-encoded: the run works, and the password appears nowhere', async () => {
    const out = path.join(dir, 'encoded');
    const url = `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${server.port}`;
    const run = await runCli(['scenario', '200', '--quiet', '--results-dir', out], { QUEUE: 'REDIS', REDIS_URL: url });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('nothing lost: 200 of 200');
    const everything = `${run.stdout}${run.stderr}`;
    expect(everything).not.toContain(PASSWORD);
    expect(everything).not.toContain(encodeURIComponent(PASSWORD));
  });
});

describe("the runtime's own warnings", () => {
  it('reach stderr with URLs redacted and known secrets scrubbed', async () => {
    const secret = 'warning-secret-password-42';
    const script = [
      "const { main } = await import('./src/cli.ts');",
      "await main(['compare', '/nonexistent-brokerbench-file.json']);",
      `process.emitWarning('could not parse redis://:${secret}@127.0.0.1:6379/0 (token ${secret})');`,
    ].join('\n');
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { ...process.env, REDIS_URL: `redis://:${secret}@127.0.0.1:6379` },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(child.stderr).toMatch(/^\(node\) Warning: could not parse redis:\/\/:\*\*\*@127\.0\.0\.1:6379\/0 \(token \*\*\*\)$/m);
    expect(child.stderr).not.toContain(secret);
  });
});
