// fan-out: every message must reach --groups K independent consumer groups (default 3), the
// push-queue pattern of the IronMQ seed (one event, several subscribers that each must get it).
// redis-stream does it natively: one stream, K consumer groups. redis-list and SQS get one queue per
// group, and each publish is written K times (what a client has to do without a fan-out primitive).
// Each group has --consumers consumers of its own; per group: delivered, completed, lost, duplicates
// and latency. The run's own ledger counts a message as completed once its last group finished it.
//
// LIMITATION: all groups' consumers run in this process, so a slow group slows the others' share of
// the CPU. With copies the publisher pays K writes per message, which the publish rate shows; a
// publish that failed for one group is counted as failed for the message (the groups that got their
// copy still deliver it). Streams keep acked entries (no XDEL: another group may still need them),
// so the stream grows for the run's length and is removed at the end.

import { summarize } from '../src/metrics/histogram.ts';
import { formatCount, formatLatency } from '../src/format.ts';
import { FanOut } from '../src/runner/fan-out.ts';
import { runPipeline } from '../src/runner/pipeline.ts';
import { ledgerVerdicts } from './verdicts.ts';
import { publishedCount } from '../src/metrics/ledger.ts';
import type { Scenario } from '../src/scenario.ts';
import type { ScenarioOutcome, ScenarioValue } from '../src/outcome.ts';

export const fanOut: Scenario = {
  name: 'fan-out',
  measures: 'whether every message reaches each of K independent consumer groups, with per-group latency, loss and duplicates',
  limitations: "all groups' consumers share this process; without native groups every publish is written once per group",
  requires: [],
  async run(context): Promise<ScenarioOutcome> {
    const { config } = context;
    const fan = new FanOut({ broker: context.broker, config, queues: context.queues, clock: context.clock, groups: config.fanOutGroups });
    let outcome;
    try {
      outcome = await runPipeline({ ...context, target: fan, consumers: fan });
    } finally {
      await fan.teardown();
    }
    const groups = fan.results();
    const k = groups.length;
    const how = fan.native
      ? `one ${config.adapter} queue read by ${formatCount(k)} consumer groups`
      : `${formatCount(k)} ${config.adapter} queues, one per group, each publish written ${formatCount(k)} times`;

    const verdicts: string[] = [];
    const short = groups.filter((group) => group.ledger.lost > 0);
    const published = publishedCount(outcome.ledger);
    verdicts.push(
      short.length === 0
        ? `every message reached all ${formatCount(k)} groups (${how}): ${formatCount(outcome.ledger.completed)} of ${formatCount(published)} completed by each`
        : `${formatCount(short.length)} of ${formatCount(k)} groups fell short (${how}): ` +
            short.map((group) => `${group.name} LOST ${formatCount(group.ledger.lost)}`).join(', '),
    );
    const p99s = groups.map((group) => summarize(group.endToEnd).p99);
    const slowest = p99s.indexOf(Math.max(...p99s));
    const fastest = Math.min(...p99s);
    const spread =
      formatLatency(fastest) === formatLatency(p99s[slowest]!)
        ? `end-to-end p99 ${formatLatency(fastest)} in every group`
        : `end-to-end p99 per group from ${formatLatency(fastest)} to ${formatLatency(p99s[slowest]!)} (${groups[slowest]!.name})`;
    verdicts.push(`${spread}; all groups done with a message p99 ${formatLatency(summarize(outcome.histograms.completion).p99)} after its publish`);
    const duplicated = groups.filter((group) => group.ledger.duplicateDeliveries > 0);
    for (const group of duplicated) verdicts.push(`${group.name}: ${formatCount(group.ledger.duplicateDeliveries)} duplicate deliveries`);
    verdicts.push(...ledgerVerdicts(outcome).map((line) => `all groups: ${line}`));

    const rows = groups.map((group) => {
      const e2e = summarize(group.endToEnd);
      const done = summarize(group.completion);
      return [
        group.name,
        formatCount(group.ledger.delivered),
        formatCount(group.ledger.completed),
        formatCount(group.ledger.lost),
        formatCount(group.ledger.duplicateDeliveries),
        formatLatency(e2e.p50),
        formatLatency(e2e.p99),
        formatLatency(done.p99),
      ];
    });
    const records = groups.map((group): Record<string, ScenarioValue> => {
      const e2e = summarize(group.endToEnd);
      return {
        group: group.name,
        delivered: group.ledger.delivered,
        completed: group.ledger.completed,
        lost: group.ledger.lost,
        publishFailed: group.ledger.publishFailed,
        duplicateDeliveries: group.ledger.duplicateDeliveries,
        endToEndP50Us: e2e.p50,
        endToEndP99Us: e2e.p99,
        completionP99Us: summarize(group.completion).p99,
      };
    });
    return {
      ...outcome,
      verdicts,
      scenarioData: {
        tables: [
          {
            title: `fan-out to ${k} groups (${how}; ${config.consumers} consumers each)`,
            head: ['group', 'delivered', 'completed', 'lost', 'duplicates', 'e2e p50', 'e2e p99', 'completion p99'],
            rows,
          },
        ],
        histograms: Object.fromEntries(groups.map((group) => [`${group.name} end-to-end`, group.endToEnd])),
        records: { groups: records },
        values: { groups: k, native: fan.native, groupsShort: short.length },
      },
    };
  },
};
