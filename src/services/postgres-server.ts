// Where PostgreSQL comes from: DATABASE_URL, else the server already on 127.0.0.1:5432, else a throw-away
// cluster made with initdb and started with postgres from the PATH (or Debian's /usr/lib/postgresql/*/bin),
// on a free loopback port, in its own process group, its data directory removed on stop and on exit.
//
// LIMITATION: postgres refuses to run as root, so as root the cluster runs as the `postgres` user (setpriv);
// without that user there is no throw-away cluster. It keeps PostgreSQL's default durability (fsync on), so
// its figures compare with a real server's; initdb takes a few seconds.

import { spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { UsageError } from '../errors.ts';
import { redactUrl } from '../redact.ts';
import { findOnPath, freePort, isLoopbackUrl, lastLine, startServerProcess } from './children.ts';

/** A PostgreSQL to talk to, and how to let go of it. */
export interface PostgresEndpoint {
  /** Connection string, e.g. `postgres://postgres@127.0.0.1:5432/postgres`. May hold a password: redact before showing. */
  url: string;
  /** `local`: a loopback server someone else runs; `embedded`: started here; `other`: anything else. */
  kind: 'local' | 'embedded' | 'other';
  /** Stops what this process started; a no-op for servers it did not start. Calling it twice is harmless. */
  stop(): Promise<void>;
}

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const HOST = '127.0.0.1';
/** How long the default server gets to accept a connection before we look elsewhere. */
const PROBE_TIMEOUT_MS = 1_000;
/** initdb on a loaded 2-core machine, then the first connection. */
const INITDB_TIMEOUT_MS = 60_000;
const START_TIMEOUT_MS = 15_000;
/** How long a stopped cluster gets to shut down on SIGINT (fast shutdown) before SIGKILL. */
const STOP_GRACE_MS = 5_000;

export const START_POSTGRES_HINT =
  'start PostgreSQL (apt-get install postgresql, or `docker compose up -d postgres`) or set DATABASE_URL';

/**
 * DATABASE_URL set -> use it (kind `local` if its host is loopback, else `other`).
 * Else if 127.0.0.1:5432 accepts `postgres@postgres` within ~1 s -> `local`.
 * Else initdb + postgres on a free loopback port -> `embedded`; stop() shuts it down and removes its files.
 * Throws a one-line `UsageError` saying how to get a PostgreSQL when none of these works.
 */
export async function resolvePostgres(env: { DATABASE_URL?: string | undefined }): Promise<PostgresEndpoint> {
  const noop = async (): Promise<void> => {};
  const fromEnv = env.DATABASE_URL?.trim();
  if (fromEnv) {
    if (!/^postgres(ql)?:\/\//i.test(fromEnv)) {
      throw new UsageError(`DATABASE_URL "${redactUrl(fromEnv)}" is not a postgres:// URL, e.g. ${DEFAULT_DATABASE_URL}`);
    }
    return { url: fromEnv, kind: isLoopbackUrl(fromEnv) ? 'local' : 'other', stop: noop };
  }
  if (await postgresAnswers(DEFAULT_DATABASE_URL, PROBE_TIMEOUT_MS)) return { url: DEFAULT_DATABASE_URL, kind: 'local', stop: noop };
  const server = await startPostgresServer();
  return { url: server.url, kind: 'embedded', stop: server.stop };
}

/** True if `url` accepts a connection and answers a query within `timeoutMs`. Never throws. */
export async function postgresAnswers(url: string, timeoutMs: number): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Makes a cluster in a private temporary directory (trust authentication, user `postgres`) and starts it
 * on a free loopback port, as the `postgres` user when this process is root. Resolves once it accepts
 * connections; rejects with a one-line UsageError (the server's last log line) otherwise.
 */
export async function startPostgresServer(): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  const initdb = findProgram('initdb');
  const postgres = findProgram('postgres');
  if (initdb === undefined || postgres === undefined) {
    throw new UsageError(`no PostgreSQL: nothing answers on ${HOST}:5432 and initdb is not on PATH; ${START_POSTGRES_HINT}`);
  }
  const runAs = asServerUser();
  const dir = mkdtempSync(join(tmpdir(), 'brokerbench-postgres-'));
  const data = join(dir, 'data');
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  if (runAs.uid !== undefined) chownSync(dir, runAs.uid, runAs.gid!);
  const initArgs = ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions'];
  const init = [...runAs.prefix, initdb, ...initArgs];
  const made = spawnSync(init[0]!, init.slice(1), { env: { PATH: process.env['PATH'] ?? '', LANG: 'C' }, encoding: 'utf8', timeout: INITDB_TIMEOUT_MS });
  if (made.status !== 0) {
    removeDir();
    throw new UsageError(`initdb failed: ${lastLine(`${made.stdout ?? ''}\n${made.stderr ?? ''}${made.error ? `\n${made.error.message}` : ''}`)}`);
  }
  const port = await freePort(HOST);
  const args = ['-D', data, '-p', String(port), '-c', `listen_addresses=${HOST}`, '-c', `unix_socket_directories=${dir}`];
  const url = `postgres://postgres@${HOST}:${port}/postgres`;
  const server = await startServerProcess({
    name: 'postgres',
    // As root, through setpriv, which execs the server: stopping the process group stops it.
    command: [...runAs.prefix, postgres, ...args],
    env: { LANG: 'C' },
    port,
    workDir: dir,
    answers: () => postgresAnswers(url, PROBE_TIMEOUT_MS),
    answersWhat: 'accept connections',
    startTimeoutMs: START_TIMEOUT_MS,
    pollMs: 100,
    stopGraceMs: STOP_GRACE_MS,
    // Fast shutdown: roll back open transactions and exit, rather than wait for every client.
    stopSignal: 'SIGINT',
  });
  return { url, port, stop: server.stop };
}

/** How to run the server's programs: directly, or as root through setpriv as the `postgres` user. */
function asServerUser(): { prefix: string[]; uid?: number; gid?: number } {
  if (userInfo().uid !== 0) return { prefix: [] };
  const setpriv = findProgram('setpriv');
  const id = (flag: string): number => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  if (setpriv === undefined || !Number.isInteger(uid) || spawnSync('id', ['postgres']).status !== 0) {
    throw new UsageError(`postgres refuses to run as root and there is no postgres user to run it as (setpriv); ${START_POSTGRES_HINT}`);
  }
  return { prefix: [setpriv, '--reuid=postgres', '--regid=postgres', '--init-groups', '--'], uid, gid: id('-g') };
}

/** `name` on PATH, else in Debian's versioned directories (newest first). */
function findProgram(name: string): string | undefined {
  let debian: string[] = [];
  try {
    debian = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a)).map((version) => `/usr/lib/postgresql/${version}/bin`);
  } catch {
    // no Debian layout
  }
  return findOnPath(name, debian);
}
