// The shape every reader of a result file (summary, compare, report, .hgrm) relies on, checked on load
// with zod: a file anyone can write is data, and a wrong type is one line naming the file and the
// field, never a TypeError deep in a printer.
//
// LIMITATION: it checks types, not meaning (a count that is negative, a histogram that does not
// decode: the loaders say those). Fields the readers do not use, and fields a newer brokerbench adds,
// pass unchecked, so files from other versions of the same schema still load.

import { z } from 'zod';

const count = z.number().finite();
const text = z.string();
const scalar = z.union([z.number(), z.string(), z.boolean(), z.null()]);

const latency = z.looseObject({
  count,
  min: count,
  mean: count,
  p50: count,
  p90: count,
  p99: count,
  p999: count,
  max: count,
  histogram: text,
  clamped: count.optional(),
});

const table = z.looseObject({ title: text, head: z.array(text), rows: z.array(z.array(text)) });

export const resultSchema = z.looseObject({
  runId: text,
  status: z.enum(['completed', 'timeout', 'failed', 'interrupted']),
  reason: text.optional(),
  startedAt: text,
  finishedAt: text,
  scenario: text,
  workload: z.looseObject({ name: text, file: text, content: text }).optional(),
  config: z.looseObject({
    adapter: text,
    mode: text,
    scenario: text,
    messages: count,
    payloadBytes: count,
    publishBatch: count,
    publishConcurrency: count,
    consumers: count,
    receiveBatch: count,
    queues: count,
    ratePerSec: count,
    maxReceives: count,
    task: z.looseObject({ durationMs: count, distribution: text, work: text }),
  }),
  broker: z.looseObject({
    name: text,
    mode: text,
    serverVersion: text,
    endpoint: text,
    endpointKind: text,
    capabilities: z.looseObject({ delivery: text }),
  }),
  environment: z.looseObject({ harnessVersion: text, node: text, cpuModel: text, cpuCount: count }),
  ledger: z.looseObject({
    expected: count,
    publishFailed: count,
    delivered: count,
    deliveries: count,
    duplicateDeliveries: count,
    completed: count,
    duplicateCompletions: count,
    notSent: count.optional(),
    inDoubt: count.optional(),
    lost: count,
    unknown: count,
    foreign: count.optional(),
  }),
  lost: count.optional(),
  runToken: text.optional(),
  missing: z.array(count),
  counters: z.record(text, count),
  throughput: z.looseObject({
    publishSec: count,
    totalSec: count,
    receiveSec: count.optional(),
    publishPerSec: count,
    receivePerSec: count,
    completePerSec: count,
  }),
  latency: z.looseObject({
    publish: latency,
    endToEnd: latency,
    execution: latency,
    completion: latency,
    sameHost: latency.optional(),
    crossHost: latency.extend({ errorBoundUs: count.nullable() }).optional(),
  }),
  workers: z
    .array(
      z.looseObject({
        shard: count,
        host: text,
        status: text,
        file: text,
        startOffsetUs: count.nullable(),
        clockReference: text,
        clockOffsetUs: count,
        clockUncertaintyUs: count.nullable(),
      }),
    )
    .optional(),
  finalDepth: z.looseObject({ ready: count, inFlight: count, delayed: count, dead: count }),
  timeline: z.union([
    z.looseObject({
      bucketMs: count.positive(),
      points: z.array(
        z.looseObject({ startMs: count, published: count, received: count, completed: count, failed: count, depth: count.optional() }),
      ),
    }),
    // Files written before the bucket width was recorded: one point per second.
    z.array(z.looseObject({ second: count, published: count, received: count, completed: count, failed: count, depth: count.optional() })),
  ]),
  requests: z.looseObject({ byKind: z.record(text, count), total: count, billed: count }).optional(),
  queueStats: z.record(text, count).optional(),
  harness: z.looseObject({ cpuCores: count, peakRssBytes: count, eventLoopDelayP50Ms: count, eventLoopDelayP99Ms: count }),
  verdicts: z.array(text),
  errors: z.array(text),
  scenarioData: z
    .looseObject({
      tables: z.array(table),
      histograms: z.record(text, latency),
      records: z.record(text, z.array(z.record(text, scalar))),
      values: z.record(text, scalar),
    })
    .optional(),
});

/**
 * A union (the timeline's two shapes) fails as a whole with "Invalid input"; the shape the value had
 * (the branch that got past its type, so its issue lies deeper) says what is wrong inside it.
 */
function innermost(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  const inside = issue.errors.find((branch) => branch.length > 0 && branch[0]!.path.length > 0)?.[0];
  return inside === undefined ? issue : innermost({ ...inside, path: [...issue.path, ...inside.path] });
}

/** The first thing wrong with `candidate`, as `field.path: expected …`; undefined when it has the shape. */
export function resultShapeProblem(candidate: unknown): string | undefined {
  const checked = resultSchema.safeParse(candidate);
  if (checked.success) return undefined;
  const issue = innermost(checked.error.issues[0]!);
  const where = issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('').replace(/^\./, '');
  return `${where || 'the file'}: ${issue.message}`;
}
