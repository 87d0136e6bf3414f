// The server side of the postgres entry: where its server comes from (DATABASE_URL, the local 5432, a
// throw-away cluster), which variable holds a secret, how a connection is opened and its errors told in one
// line, the table names, their statistics (dead tuples), and what the tests need (leftover relations).
//
// LIMITATION: names are PostgreSQL identifiers (at most 63 bytes): a queue whose table name would be longer
// is named by a hash of its name under the namespace, so the namespace itself must stay under 40 bytes.

import { createHash } from 'node:crypto';
import pg from 'pg';
import { BrokerError, type BrokerAdapter, type Endpoint, type Environment } from '../src/broker.ts';
import { redactUrl } from '../src/redact.ts';
import { DEFAULT_DATABASE_URL, resolvePostgres, START_POSTGRES_HINT } from '../src/services/postgres-server.ts';
import { firstLine } from './kit/index.ts';

export const ADAPTER = 'postgres';

/** PostgreSQL cuts identifiers to this many bytes (NAMEDATALEN - 1), which would make two names one. */
const MAX_IDENTIFIER_BYTES = 63;
/** The longest namespace that leaves room for `-<hash>-dead`. */
export const MAX_NAMESPACE_BYTES = MAX_IDENTIFIER_BYTES - '-0123456789abcdef-dead'.length;

/** The names of a queue's tables; the jobs table's name is also its NOTIFY channel. */
export interface QueueTables {
  /** Unquoted names, as pg_class and pg_notify() spell them. */
  readonly jobs: string;
  readonly dead: string;
  /** Quoted, for SQL text. */
  readonly jobsSql: string;
  readonly deadSql: string;
}

export function queueTables(namespace: string, queue: string): QueueTables {
  let base = `${namespace}-${queue}`;
  if (Buffer.byteLength(`${base}-dead`) > MAX_IDENTIFIER_BYTES) {
    base = `${namespace}-${createHash('sha256').update(queue).digest('hex').slice(0, 16)}`;
  }
  const dead = `${base}-dead`;
  return { jobs: base, dead, jobsSql: quoteIdentifier(base), deadSql: quoteIdentifier(dead) };
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** One table's row counts from pg_stat_user_tables: what vacuum has yet to reclaim is `deadTuples`. */
export interface TableStats {
  readonly table: string;
  readonly liveTuples: number;
  /** Deleted (acked) and superseded (received, nacked) row versions not yet vacuumed: the queue's bloat. */
  readonly deadTuples: number;
  /** Rows deleted since the statistics were reset: acks and dead-lettering. */
  readonly deletedRows: number;
  readonly updatedRows: number;
  readonly autovacuums: number;
}

/**
 * Statistics of every table under `namespace` at `url` (pg_stat_user_tables; the server collects them
 * with a delay of up to a second or so). How to watch a queue's dead tuples during a run.
 */
export async function postgresTableStats(url: string, namespace: string): Promise<TableStats[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ relname: string; live: string; dead: string; del: string; upd: string; vacuums: string }>(
      `SELECT relname, n_live_tup AS live, n_dead_tup AS dead, n_tup_del AS del, n_tup_upd AS upd, autovacuum_count AS vacuums
         FROM pg_stat_user_tables WHERE left(relname, length($1)) = $1 ORDER BY relname`,
      [namespace],
    );
    return rows.map((row) => ({
      table: row.relname,
      liveTuples: Number(row.live),
      deadTuples: Number(row.dead),
      deletedRows: Number(row.del),
      updatedRows: Number(row.upd),
      autovacuums: Number(row.vacuums),
    }));
  });
}

/** Every relation (table, sequence, index) whose name starts with `prefix`. */
export async function relationsWithPrefix(url: string, prefix: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ relname: string }>(
      'SELECT relname FROM pg_class WHERE left(relname, length($1)) = $1 ORDER BY relname',
      [prefix],
    );
    return rows.map((row) => row.relname);
  });
}

/** One connection with the handle's limits; a failure is a BrokerError in one line saying what to do. */
export async function connectPostgres(shared: { readonly url: string; readonly commandTimeoutMs: number }): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: shared.url,
    connectionTimeoutMillis: shared.commandTimeoutMs,
    // The server cancels a statement that runs too long; the client gives up a little later if the server is gone.
    statement_timeout: shared.commandTimeoutMs,
    query_timeout: shared.commandTimeoutMs + 1_000,
    application_name: 'brokerbench',
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new BrokerError(ADAPTER, 'open', explainPostgresError(shared.url, error, shared.commandTimeoutMs), { cause: error });
  }
  return client;
}

/** The one line a PostgreSQL error is told in, with the fix where the user can make one; the URL redacted. */
export function explainPostgresError(url: string, error: unknown, timeoutMs: number): string {
  const where = redactUrl(url);
  const code = (error as { code?: unknown } | null)?.code;
  const text = firstLine(error);
  if (code === '28P01' || code === '28000') return `authentication failed at ${where} (${text}); check the user name and password in DATABASE_URL`;
  if (code === '3D000') return `${text} at ${where}; create it (createdb) or name another database in DATABASE_URL`;
  if (code === '42P01') return `${text}: prepare the queue first`;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return `cannot reach ${where} (${code}); ${START_POSTGRES_HINT}`;
  if (/timeout|timed out/i.test(text) && /connect/i.test(text)) {
    return `cannot reach ${where} (connect timed out: no answer within ${timeoutMs} ms); ${START_POSTGRES_HINT}`;
  }
  return text;
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The registry facts of the postgres entry. */
export const postgresServerFacts = {
  serverVariable: 'DATABASE_URL',
  async resolve(env: Environment): Promise<Endpoint> {
    const server = await resolvePostgres({ DATABASE_URL: env['DATABASE_URL'] });
    return { url: server.url, settings: { endpointKind: server.kind }, stop: () => server.stop() };
  },
  secretVariables: [{ name: 'DATABASE_URL', part: 'url-password' }],
  testing: {
    leftovers: (endpoint, namespace) => relationsWithPrefix(endpoint.url ?? DEFAULT_DATABASE_URL, namespace),
    unreachableUrl: (port: number) => `postgres://127.0.0.1:${port}`,
  },
} as const satisfies Partial<BrokerAdapter>;
