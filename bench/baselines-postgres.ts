// The hand-written PostgreSQL loop the postgres adapter's rate is divided by: the same table shape and the
// same statements a job queue on PostgreSQL needs (INSERT of a batch with NOTIFY; UPDATE ... FOR UPDATE SKIP
// LOCKED ... RETURNING to receive with a visibility deadline; DELETE ... = ANY to ack), without the harness's
// stamp, ledger, histograms, receipts guarded by receive count, dead letters or delays.
//
// LIMITATION: like the harness, whose publishers share one handle, its publishers share one connection (a
// PostgreSQL connection runs one statement at a time); with a connection each it would publish faster.

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { LoopShape } from './baselines.ts';

/** Publishers on one connection, `consumers` connections receiving and acking. Returns msg/s, timed to the last ack. */
export async function rawPostgresLoop(url: string, shape: LoopShape): Promise<number> {
  const table = `bb-bench-${randomBytes(4).toString('hex')}-raw-postgres`;
  const quoted = `"${table}"`;
  const open = async (): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return client;
  };
  const producer = await open();
  const consumers = await Promise.all(Array.from({ length: shape.consumers }, open));
  await producer.query(`CREATE TABLE ${quoted} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL,
    receive_count integer NOT NULL DEFAULT 0, visible_at timestamptz NOT NULL DEFAULT now())`);
  const padding = 'x'.repeat(shape.payloadBytes);
  const insert = `WITH added AS (INSERT INTO ${quoted} (body) SELECT unnest($1::text[])) SELECT pg_notify('${table}', '')`;
  const receive = `UPDATE ${quoted} q SET receive_count = q.receive_count + 1, visible_at = now() + interval '30 seconds'
    WHERE q.id = ANY(ARRAY(SELECT id FROM ${quoted} WHERE visible_at <= now() ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED))
    RETURNING q.id, q.body`;
  const ack = `DELETE FROM ${quoted} WHERE id = ANY($1::bigint[])`;
  let next = 0;
  let acked = 0;
  const started = performance.now();
  let finished = started;
  const deadline = started + shape.timeoutMs;
  // One statement at a time on the shared connection.
  let turn: Promise<unknown> = Promise.resolve();
  const publish = async (): Promise<void> => {
    while (next < shape.messages && performance.now() < deadline) {
      const first = next;
      const count = Math.min(shape.batch, shape.messages - first);
      next += count;
      const bodies = Array.from({ length: count }, (_, k) => {
        const index = String(first + k);
        return index + padding.slice(index.length);
      });
      const sent = turn.then(() => producer.query({ name: 'publish', text: insert, values: [bodies] }));
      turn = sent.catch(() => undefined);
      await sent;
    }
  };
  const consume = async (client: pg.Client): Promise<void> => {
    let wake: (() => void) | undefined;
    // A notification that came while the receive ran may be for rows it did not see: then look again at once.
    let notified = false;
    client.on('notification', () => {
      notified = true;
      wake?.();
    });
    await client.query(`LISTEN "${table}"`);
    while (acked < shape.messages && performance.now() < deadline) {
      notified = false;
      const { rows } = await client.query<{ id: string; body: string }>({ name: 'receive', text: receive, values: [shape.batch] });
      if (rows.length === 0) {
        if (notified) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 50);
          wake = () => resolve(clearTimeout(timer));
        });
        continue;
      }
      await client.query({ name: 'ack', text: ack, values: [rows.map((row) => row.id)] });
      acked += rows.length;
      if (acked >= shape.messages) finished = performance.now();
    }
  };
  try {
    await Promise.all([...Array.from({ length: shape.publishers }, publish), ...consumers.map(consume)]);
    if (acked < shape.messages) throw new Error(`raw postgres loop moved ${acked} of ${shape.messages} before its time ran out`);
    return shape.messages / ((finished - started) / 1000);
  } finally {
    await producer.query(`DROP TABLE IF EXISTS ${quoted}`);
    await Promise.all([producer, ...consumers].map((client) => client.end()));
  }
}
