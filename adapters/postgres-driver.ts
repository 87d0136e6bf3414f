// The PostgreSQL driver (its registry entry is adapters/postgres.ts): a jobs table per queue, taken with FOR UPDATE SKIP LOCKED. Receive is one statement
// that picks due rows, raises their receive count and sets their visibility deadline (moving rows received
// maxReceives times to the queue's dead-letter table instead); ack deletes by id; delays and nack delays are a
// due time (visible_at). Waiting consumers sleep on LISTEN/NOTIFY (every publish and nack notifies the queue's
// channel) or until the earliest due time, whichever is first, never longer than waitMs: no polling loop.
//
// One pg.Client per handle, which also LISTENs: a receive waits between statements, with no query open, and
// PostgreSQL delivers notifications to an idle session, so a second connection would only double the server's
// backends (a process each) for nothing. Publishers that share a handle share its connection, one statement at a time.
//
// Settings read from `options.settings`:
//   endpointKind  string  what describe() reports as `endpointKind` (resolve() passes it); default 'local'.
//
// LIMITATION: every receive and ack leaves dead row versions until (auto)vacuum reclaims them: the bloat
// long-running PostgreSQL queues are known for; queueStats() reports them after a run, in its result.
// Bodies are `text`: a body holding U+0000 is refused by the server. Ordering is by id among due rows only.

import type pg from 'pg';
import type { OutgoingMessage, QueueDepth, QueueSpec, ReceivedMessage, ReceiveOptions, ServerMemory } from '../src/broker.ts';
import { redactUrl } from '../src/redact.ts';
import type { Driver, EndpointKind, ServerInfo } from './kit/index.ts';
import { connectPostgres, explainPostgresError, queueTables, type QueueTables } from './postgres-registry.ts';

/** Used for a queue published to before it was prepared, and by handles that find no spec on its table. */
const DEFAULT_SPEC: Omit<QueueSpec, 'name'> = { visibilityTimeoutMs: 30_000, maxReceives: 0 };

/** A queue's statements, built once per queue and spec; named, so each connection parses them once. */
interface QueueSql {
  readonly tables: QueueTables;
  readonly spec: Omit<QueueSpec, 'name'>;
  /** Each statement's text, and its name on every connection. */
  readonly text: Readonly<Record<Statement, string>>;
  readonly names: Readonly<Record<Statement, string>>;
}
type Statement = 'publish' | 'publishDelayed' | 'receive' | 'ack';

/** What every handle of one open() shares: its duplicates see the queues it prepared. */
export interface Shared {
  readonly url: string;
  readonly namespace: string;
  readonly commandTimeoutMs: number;
  readonly endpointKind: EndpointKind;
  readonly queues: Map<string, QueueSql>;
  statements: number;
}

export class PostgresDriver implements Driver {
  readonly #shared: Shared;
  #client: pg.Client;
  /** The connection went away: the next call opens another (and LISTENs again). */
  #broken = false;
  readonly #listening = new Set<string>();
  /** By channel: the earliest due time known (ms since the epoch), and until when that holds (#dueMs). */
  readonly #due = new Map<string, { atMs: number; untilMs: number }>();
  /** The channel a receive of this handle is waiting on, whether it was notified, and how to wake it. */
  #waitingOn: string | undefined;
  #notified = false;
  #wake: (() => void) | undefined;
  #closed = false;
  /** The last statement sent: the next one waits for it. */
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(shared: Shared, client: pg.Client) {
    this.#shared = shared;
    this.#client = this.#watch(client);
  }

  static async open(shared: Shared): Promise<PostgresDriver> {
    return new PostgresDriver(shared, await connectPostgres(shared));
  }

  async describe(): Promise<ServerInfo> {
    const { rows } = await this.#query<{ version: string }>("SELECT current_setting('server_version') AS version");
    return { serverVersion: rows[0]?.version ?? 'unknown', endpoint: redactUrl(this.#shared.url), endpointKind: this.#shared.endpointKind };
  }

  async prepare({ name, ...spec }: QueueSpec): Promise<void> {
    const sql = this.#build(name, spec);
    const { jobsSql, deadSql, jobs } = sql.tables;
    // The advisory lock makes consumer processes preparing at once take turns: concurrent CREATE TABLE IF NOT EXISTS can fail.
    const made = this.#query(`BEGIN;
      SELECT pg_advisory_xact_lock(hashtext(${literal(jobs)}));
      CREATE TABLE IF NOT EXISTS ${jobsSql} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL,
        receive_count integer NOT NULL DEFAULT 0, in_flight boolean NOT NULL DEFAULT false, visible_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE IF NOT EXISTS ${deadSql} (id bigint PRIMARY KEY, body text NOT NULL, receive_count integer NOT NULL, dead_at timestamptz NOT NULL DEFAULT now());
      COMMENT ON TABLE ${jobsSql} IS ${literal(JSON.stringify(spec))};
      COMMIT;`);
    // A statement that failed leaves the transaction open and aborted: end it, or the session refuses everything after.
    await made.catch(async (error: unknown) => {
      await this.#query('ROLLBACK').catch(() => undefined);
      throw error;
    });
    this.#shared.queues.set(name, sql);
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    const sql = await this.#queue(queue);
    const bodies = messages.map((message) => message.body);
    const delays = messages.map((message) => message.delayMs ?? 0);
    const soonestMs = Math.min(...delays.filter((ms) => ms > 0));
    const query = soonestMs < Infinity
      ? { name: sql.names.publishDelayed, text: sql.text.publishDelayed, values: [bodies, delays, delays.includes(0) ? `0,${soonestMs}` : String(soonestMs)] }
      : { name: sql.names.publish, text: sql.text.publish, values: [bodies] };
    try {
      await this.#query(query);
    } catch (error) {
      // Published before prepare: made with the defaults, as Redis makes a list on its first push.
      if ((error as { code?: string }).code !== '42P01') throw error;
      await this.prepare({ name: queue, ...DEFAULT_SPEC });
      await this.#query(query);
    }
  }

  async receive(queue: string, { maxMessages, waitMs }: ReceiveOptions): Promise<ReceivedMessage[]> {
    const sql = await this.#queue(queue);
    const deadlineMs = Date.now() + waitMs;
    this.#waitingOn = sql.tables.jobs;
    try {
      while (!this.#closed) {
        // Cleared before the statement: a notification that arrives after it was sent may be for rows it did not see.
        this.#notified = false;
        if (!this.#listening.has(sql.tables.jobs)) {
          await this.#query(`LISTEN ${sql.tables.jobsSql}`);
          this.#listening.add(sql.tables.jobs);
        }
        const { rows } = await this.#query<{ id: string | null; body: string | null; receive_count: number }>({
          name: sql.names.receive, text: sql.text.receive,
          // The statement without dead letters takes no $3: PostgreSQL refuses a parameter a statement does not use.
          values: sql.spec.maxReceives > 0 ? [maxMessages, sql.spec.visibilityTimeoutMs, sql.spec.maxReceives] : [maxMessages, sql.spec.visibilityTimeoutMs],
        });
        const delivered = rows.filter((row) => row.id !== null);
        if (delivered.length > 0) {
          return delivered.map((row) => ({ body: row.body!, receiveCount: row.receive_count, receipt: `${row.id}:${row.receive_count}` }));
        }
        // What it picked went to the dead letters: there may be more due behind them.
        if (rows.length > 0) continue;
        for (;;) {
          if (Date.now() >= deadlineMs || this.#closed) return [];
          if (this.#notified) break;
          const dueMs = await this.#dueMs(sql);
          if (this.#notified) break;
          if (dueMs <= Date.now()) {
            // Due now (or a deadline this handle knew of passed): receive, and ask the table afresh if that finds nothing.
            this.#due.delete(sql.tables.jobs);
            break;
          }
          await this.#sleep(Math.min(deadlineMs, dueMs) - Date.now());
        }
      }
      return [];
    } finally {
      this.#waitingOn = undefined;
    }
  }

  async ack(queue: string, messages: readonly ReceivedMessage[]): Promise<void> {
    const sql = await this.#queue(queue);
    const [ids, counts] = receipts(messages);
    // A receipt names a delivery (id and receive count): a late ack of an expired delivery leaves the redelivered copy alone.
    await this.#query({ name: sql.names.ack, text: sql.text.ack, values: [ids, counts] });
  }

  async nack(queue: string, messages: readonly ReceivedMessage[], retryDelayMs: number): Promise<void> {
    const { tables } = await this.#queue(queue);
    const [ids, counts] = receipts(messages);
    // Notified even when delayed: the delay in the payload tells a waiting consumer when to look.
    await this.#query(
      `WITH given AS (UPDATE ${tables.jobsSql} q SET in_flight = false, visible_at = now() + $3::float8 * interval '1 millisecond'
         FROM unnest($1::bigint[], $2::integer[]) AS r(id, receive_count)
         WHERE q.id = r.id AND q.receive_count = r.receive_count AND q.in_flight RETURNING 1)
       SELECT pg_notify($4, $5) FROM (SELECT count(*) AS n FROM given) g WHERE g.n > 0`,
      [ids, counts, retryDelayMs, tables.jobs, retryDelayMs > 0 ? String(retryDelayMs) : ''],
    );
  }

  async depth(queue: string): Promise<QueueDepth> {
    const { tables, spec } = await this.#queue(queue);
    // A due row received maxReceives times is a dead letter already: the next receive only moves it.
    const { rows } = await this.#query<Record<keyof QueueDepth, number>>(
      `SELECT count(*) FILTER (WHERE visible_at <= now() AND NOT doomed)::int AS ready,
              count(*) FILTER (WHERE visible_at > now() AND in_flight)::int AS "inFlight",
              count(*) FILTER (WHERE visible_at > now() AND NOT in_flight)::int AS delayed,
              count(*) FILTER (WHERE visible_at <= now() AND doomed)::int + (SELECT count(*) FROM ${tables.deadSql})::int AS dead
         FROM (SELECT visible_at, in_flight, $1::integer > 0 AND receive_count >= $1::integer AS doomed FROM ${tables.jobsSql}) q`,
      [spec.maxReceives],
    );
    return rows[0]!;
  }

  async purge(queue: string): Promise<void> {
    const { tables } = await this.#queue(queue);
    await this.#query(`TRUNCATE ${tables.jobsSql}, ${tables.deadSql}`);
  }

  async teardown(queue: string): Promise<void> {
    const tables = this.#shared.queues.get(queue)?.tables ?? queueTables(this.#shared.namespace, queue);
    await this.#query(`DROP TABLE IF EXISTS ${tables.jobsSql}, ${tables.deadSql}`);
    this.#shared.queues.delete(queue);
  }

  async duplicate(): Promise<Driver> {
    return PostgresDriver.open(this.#shared);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#client.end().catch((error: unknown) => {
      if (!this.#broken) throw error;
    });
  }

  explain(error: unknown): string {
    return explainPostgresError(this.#shared.url, error, this.#shared.commandTimeoutMs);
  }

  queueName(queue: string): string {
    return queueTables(this.#shared.namespace, queue).jobs;
  }

  /** The database's size on disk: PostgreSQL has no memory figure of its own data to give. */
  async serverMemory(): Promise<ServerMemory> {
    const { rows } = await this.#query<{ bytes: string }>('SELECT pg_database_size(current_database()) AS bytes');
    return {
      usedBytes: Number(rows[0]!.bytes),
      maxBytes: 0,
      policy: 'pg_database_size (on disk, no limit)',
      terms: { queue: 'pg_total_relation_size, on disk', server: 'pg_database_size, on disk' },
    };
  }

  /** Both tables with their indexes and TOAST, dead row versions included (pg_total_relation_size). */
  async queueMemoryBytes(queue: string): Promise<number> {
    const { tables } = await this.#queue(queue);
    const { rows } = await this.#query<{ bytes: string }>(
      'SELECT coalesce(pg_total_relation_size(to_regclass($1)), 0) + coalesce(pg_total_relation_size(to_regclass($2)), 0) AS bytes',
      [tables.jobsSql, tables.deadSql],
    );
    return Number(rows[0]!.bytes);
  }

  /**
   * The dead row versions the run's deletes and updates left in the queue's two tables, and how often
   * autovacuum has cleared them: the bloat long-running PostgreSQL queues are known for. As the
   * statistics system counts them (pg_stat_user_tables): consumers' connections have closed by now, which
   * flushes theirs, and this one flushes its own first.
   */
  async queueStats(queue: string): Promise<Readonly<Record<string, number>>> {
    const { tables } = await this.#queue(queue);
    await this.#query('SELECT pg_stat_force_next_flush()').catch(() => undefined); // PostgreSQL 15+; older ones flush within a second
    const { rows } = await this.#query<{ dead: string; vacuums: string }>(
      `SELECT coalesce(sum(n_dead_tup), 0) AS dead, coalesce(sum(autovacuum_count), 0) AS vacuums
         FROM pg_stat_user_tables WHERE relid IN (to_regclass($1), to_regclass($2))`,
      [tables.jobsSql, tables.deadSql],
    );
    return { deadTuples: Number(rows[0]!.dead), autovacuums: Number(rows[0]!.vacuums) };
  }

  /**
   * When the next row of `sql`'s queue falls due (a delay or a visibility deadline runs out), in ms since the
   * epoch: early rather than late, Infinity when none will. Asking the table takes a scan of it (no index on
   * visible_at, which every receive would have to update), so the answer is kept: until it passes, lowered by
   * the delays that notifications carry, and for at most one visibility timeout, since a row received after the
   * question falls due no earlier than that.
   */
  async #dueMs({ tables, spec }: QueueSql): Promise<number> {
    const askedMs = Date.now();
    const known = this.#due.get(tables.jobs);
    if (known !== undefined && askedMs < known.untilMs) return Math.min(known.atMs, known.untilMs);
    const { rows } = await this.#query<{ ms: number | null }>(
      `SELECT (extract(epoch FROM min(visible_at) - now()) * 1000)::float8 AS ms FROM ${tables.jobsSql} WHERE visible_at > now()`,
    );
    const ms = rows[0]?.ms ?? null;
    // Delays heard of while the question was out are kept.
    const heardMs = this.#due.get(tables.jobs)?.atMs ?? Infinity;
    const due = { atMs: Math.min(heardMs, ms === null ? Infinity : Date.now() + Math.ceil(ms)), untilMs: askedMs + spec.visibilityTimeoutMs };
    this.#due.set(tables.jobs, due);
    return Math.min(due.atMs, due.untilMs);
  }

  /** Until a notification on the waited channel, close(), or `ms` (capped to what a timer takes). */
  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#wake?.(), Math.max(1, Math.min(ms, 2 ** 31 - 1)));
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  #watch(client: pg.Client): pg.Client {
    // A payload lists delays in ms: 0 (or none) for rows ready now, which wake a waiting receive; others lower the due time it sleeps to.
    client.on('notification', ({ channel, payload }) => {
      for (const part of (payload ?? '').split(',')) {
        const delayMs = Number(part);
        if (delayMs > 0) {
          const due = this.#due.get(channel) ?? { atMs: Infinity, untilMs: 0 };
          this.#due.set(channel, { ...due, atMs: Math.min(due.atMs, Date.now() + delayMs) });
        } else if (channel === this.#waitingOn) this.#notified = true;
      }
      if (channel === this.#waitingOn) this.#wake?.();
    });
    // A dropped connection fails the calls in flight (the caller counts them); the next call reconnects.
    const lost = (): void => {
      if (this.#client === client) this.#broken = true;
    };
    client.on('error', lost);
    client.on('end', lost);
    return client;
  }

  /**
   * Runs one statement once those sent before it are done: pg 8 queues concurrent queries on a client itself
   * but warns that pg 9 will not, and the publishers of a run share one handle.
   */
  #query<R extends pg.QueryResultRow = pg.QueryResultRow>(query: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult<R>> {
    const run = this.#tail.then(async () => (await this.#live()).query<R>(query, values));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #live(): Promise<pg.Client> {
    if (this.#broken && !this.#closed) {
      const client = await connectPostgres(this.#shared);
      // Notifications sent while it was away are lost: what was heard from them goes too.
      this.#listening.clear();
      this.#due.clear();
      this.#client = this.#watch(client);
      this.#broken = false;
    }
    return this.#client;
  }

  /** The statements of `queue`: prepared here or by a duplicate, else with the spec its table carries (another process prepared it). */
  async #queue(queue: string): Promise<QueueSql> {
    const known = this.#shared.queues.get(queue);
    if (known !== undefined) return known;
    const tables = queueTables(this.#shared.namespace, queue);
    const { rows } = await this.#query<{ spec: string | null }>('SELECT obj_description(to_regclass($1), \'pg_class\') AS spec', [tables.jobsSql]);
    const spec = rows[0]?.spec ? (JSON.parse(rows[0].spec) as Omit<QueueSpec, 'name'>) : DEFAULT_SPEC;
    const sql = this.#build(queue, spec);
    // Only a queue whose table exists is remembered: a publish to a missing one must still see the error and make it.
    if (rows[0]?.spec) this.#shared.queues.set(queue, sql);
    return sql;
  }

  #build(queue: string, spec: Omit<QueueSpec, 'name'>): QueueSql {
    const tables = queueTables(this.#shared.namespace, queue);
    const { jobsSql, deadSql, jobs } = tables;
    const id = ++this.#shared.statements;
    // Rows received maxReceives times are moved to the dead letters in the same statement, never delivered again.
    // `= ANY(ARRAY(...))` keeps the primary-key lookup in the generic plan of a named statement, where LIMIT $1
    // is guessed at 10,000 rows and a join with `picked` turns into a hash join over the whole table.
    const picked = `picked AS (SELECT id FROM ${jobsSql} WHERE visible_at <= now() ORDER BY id LIMIT $1::integer FOR UPDATE SKIP LOCKED)`;
    const deliver = (doomed: string): string =>
      `UPDATE ${jobsSql} q SET receive_count = q.receive_count + 1, in_flight = true, visible_at = now() + $2::float8 * interval '1 millisecond'
         WHERE q.id = ANY(ARRAY(SELECT id FROM picked))${doomed ? ` AND NOT (${doomed})` : ''} RETURNING q.id, q.body, q.receive_count`;
    const doomed = '$3::integer > 0 AND q.receive_count >= $3::integer';
    const receive = spec.maxReceives > 0
      ? `WITH ${picked},
           dead AS (DELETE FROM ${jobsSql} q WHERE q.id = ANY(ARRAY(SELECT id FROM picked)) AND ${doomed} RETURNING q.id, q.body, q.receive_count),
           buried AS (INSERT INTO ${deadSql} (id, body, receive_count) SELECT id, body, receive_count FROM dead RETURNING id),
           delivered AS (${deliver(doomed)})
         SELECT id, body, receive_count FROM delivered
         UNION ALL SELECT NULL, NULL, count(*)::integer FROM buried HAVING count(*) > 0`
      : `WITH ${picked} ${deliver('')}`;
    const text = {
      publish: `WITH added AS (INSERT INTO ${jobsSql} (body) SELECT unnest($1::text[])) SELECT pg_notify(${literal(jobs)}, '')`,
      publishDelayed: `WITH added AS (INSERT INTO ${jobsSql} (body, visible_at)
        SELECT body, now() + delay_ms * interval '1 millisecond' FROM unnest($1::text[], $2::float8[]) AS m(body, delay_ms))
        SELECT pg_notify(${literal(jobs)}, $3::text)`,
      receive,
      ack: `DELETE FROM ${jobsSql} q USING unnest($1::bigint[], $2::integer[]) AS r(id, receive_count)
        WHERE q.id = r.id AND q.receive_count = r.receive_count`,
    };
    const names = { publish: `bb_publish_${id}`, publishDelayed: `bb_publish_delayed_${id}`, receive: `bb_receive_${id}`, ack: `bb_ack_${id}` };
    return { tables, spec, text, names };
  }
}

/** Ids and receive counts of the deliveries, from receipts `id:receiveCount`. */
function receipts(messages: readonly ReceivedMessage[]): [string[], number[]] {
  const ids: string[] = [];
  const counts: number[] = [];
  for (const { receipt } of messages) {
    const colon = receipt.indexOf(':');
    ids.push(receipt.slice(0, colon));
    counts.push(Number(receipt.slice(colon + 1)));
  }
  return [ids, counts];
}

/** A string literal for SQL text built from our own names (never from message bodies). */
function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
