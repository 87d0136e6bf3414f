// backlog: publish M messages with nobody consuming, look at what the broker holds, then start the
// consumers and time the drain. Answers "what does a waiting message cost the broker" (the RQ seed put
// it at about 300 bytes per job in Redis) and "how fast does a standing queue drain"; with --maxmemory
// (a throw-away redis-server with that limit and noeviction) it shows what happens at the limit: the
// publishes the server refuses are counted, and the books must still balance, completed + refused = M.
//
// Memory per message is read two ways: MEMORY USAGE of the run's own keys (exact for them, every
// element counted) and the change of INFO used_memory over the publish (the whole server, so other
// clients' writes and the server's own buffers land in it too). Publishing never gives up here: a
// refused batch is counted and the next one is tried at once, so every message is either accepted or
// refused on the record.
//
// LIMITATION: SQS reports no memory, so there only the drain is measured. The drain rate is consumers
// against a standing queue on this host, not publishing and consuming at once (that is throughput).
// At the limit with noeviction Redis refuses commands that may grow memory; should it refuse the
// consumers' own (the reliable list's receive script writes an in-flight set), the drain stalls until
// --timeout and the receive errors say why: this scenario shows that rather than working around it.

import { isMemoryReporting, type QueueDepth, type ServerMemory } from '../src/broker.ts';
import { formatBytes, formatCount, formatRate } from '../src/format.ts';

import { runPipeline } from '../src/runner/pipeline.ts';
import { sumDepths } from '../src/runner/publisher.ts';
import { percent, seconds } from './kit.ts';
import { ledgerVerdicts } from './verdicts.ts';
import { publishedCount } from '../src/metrics/ledger.ts';
import type { Scenario } from '../src/scenario.ts';
import type { ScenarioOutcome, ScenarioTable, ScenarioValue } from '../src/outcome.ts';

/** What Redis calls the queue's and the server's memory figures; a server with other words says so (ServerMemory.terms). */
const REDIS_TERMS = { queue: 'MEMORY USAGE', server: 'used_memory' };

/** What the broker held once every message had been offered. */
interface Standing {
  readonly depth: QueueDepth;
  readonly queueBytes: number | undefined;
  readonly server: ServerMemory | undefined;
}

export const backlog: Scenario = {
  name: 'backlog',
  measures: "the broker's memory per waiting message after M publishes with no consumer, the drain rate once consumers start, and with --maxmemory what a full Redis refuses",
  limitations: 'memory is what Redis reports (SQS reports none); the drain is consumers against a standing queue, not publish and consume at once',
  requires: [],
  defaults: { messages: 100_000 },
  async run(context): Promise<ScenarioOutcome> {
    const { broker, config, queues, clock } = context;
    const memory = isMemoryReporting(broker) ? broker : undefined;
    let before: ServerMemory | undefined;
    let standing: Standing | undefined;
    let drainStartUs = 0;
    const outcome = await runPipeline({
      ...context,
      // Read with every connection open, so their buffers are not booked as the messages' memory.
      beforePublish: async () => {
        before = memory ? await memory.serverMemory() : undefined;
      },
      // Every message is offered once: accepted, or refused and counted; never silently skipped.
      publishErrors: { giveUpAfter: Number.POSITIVE_INFINITY, backoffMs: 0 },
      afterPublish: async () => {
        const depth = sumDepths(await Promise.all(queues.map((queue) => broker.depth(queue))));
        const queueBytes = memory
          ? (await Promise.all(queues.map((queue) => memory.queueMemoryBytes(queue)))).reduce((sum, n) => sum + n, 0)
          : undefined;
        standing = { depth, queueBytes, server: memory ? await memory.serverMemory() : undefined };
        drainStartUs = clock.nowUs();
      },
    });

    const { ledger } = outcome;
    const accepted = publishedCount(ledger);
    const refused = ledger.publishFailed;
    const verdicts: string[] = [];
    const rows: string[][] = [];
    const values: Record<string, ScenarioValue> = { acceptedMessages: accepted, refusedMessages: refused };

    const waiting = standing ? standing.depth.ready + standing.depth.delayed + standing.depth.inFlight : undefined;
    if (standing && waiting !== undefined) {
      rows.push(['published (no consumer)', `${formatCount(accepted)} in ${seconds(outcome.publishEndUs - outcome.startUs)}`]);
      rows.push(['waiting in the broker', formatCount(waiting)]);
      values['waitingMessages'] = waiting;
    }
    if (!memory) {
      verdicts.push(`memory per message: ${config.adapter} reports no memory figures, so only the drain is measured`);
    } else if (standing?.queueBytes !== undefined && standing.server && before && waiting) {
      const perKeyBytes = standing.queueBytes / waiting;
      const usedDelta = standing.server.usedBytes - before.usedBytes;
      const perUsedBytes = usedDelta / waiting;
      const terms = standing.server.terms ?? REDIS_TERMS;
      verdicts.push(
        `memory per waiting message: ${formatCount(Math.round(perKeyBytes))} B in the queue's keys (${terms.queue}), ` +
          `${formatCount(Math.round(perUsedBytes))} B by the server's ${terms.server} (+${formatBytes(Math.max(0, usedDelta))} for ${formatCount(waiting)}); ` +
          `the body is ${formatCount(config.payloadBytes)} B, so ${formatCount(Math.round(perKeyBytes - config.payloadBytes))} B per message is the queue's own`,
      );
      rows.push([`queue keys (${terms.queue})`, `${formatBytes(standing.queueBytes)}, ${perKeyBytes.toFixed(0)} B per message`]);
      rows.push([`server ${terms.server}`, `${formatBytes(before.usedBytes)} -> ${formatBytes(standing.server.usedBytes)}, ${perUsedBytes.toFixed(0)} B per message`]);
      Object.assign(values, {
        queueBytes: standing.queueBytes,
        bytesPerMessage: perKeyBytes,
        usedMemoryBeforeBytes: before.usedBytes,
        usedMemoryAfterBytes: standing.server.usedBytes,
        usedMemoryBytesPerMessage: perUsedBytes,
      });
    }
    if (standing?.server && standing.server.maxBytes > 0) {
      const { maxBytes, policy, usedBytes } = standing.server;
      const first = outcome.errors.find((line) => line.startsWith('publish:'));
      verdicts.push(
        `maxmemory ${formatBytes(maxBytes)} (${policy}): ${formatCount(accepted)} of ${formatCount(ledger.expected)} messages accepted, ` +
          (refused > 0
            ? `${formatCount(refused)} refused (${percent(refused, ledger.expected)})${first ? `, first refusal "${first.slice('publish: '.length)}"` : ''}`
            : 'none refused') +
          `; used_memory ${formatBytes(usedBytes)} when publishing ended`,
      );
      rows.push(['maxmemory', `${formatBytes(maxBytes)} (${policy}), ${formatCount(refused)} messages refused`]);
      Object.assign(values, { maxMemoryBytes: maxBytes, maxMemoryPolicy: policy });
    }

    const drainUs = drainStartUs > 0 ? outcome.endUs - drainStartUs : 0;
    const drainPerSec = drainUs > 0 ? (ledger.completed * 1e6) / drainUs : 0;
    if (drainStartUs > 0) {
      verdicts.push(
        `drained ${formatCount(ledger.completed)} of ${formatCount(waiting ?? accepted)} waiting messages in ${seconds(drainUs)}: ` +
          `${formatRate(drainPerSec)} with ${formatCount(config.consumers)} consumers`,
      );
      rows.push(['drain', `${formatCount(ledger.completed)} in ${seconds(drainUs)}, ${formatRate(drainPerSec)}`]);
      Object.assign(values, { drainSec: drainUs / 1e6, drainPerSec });
    }
    // The books: every message offered is completed, refused, or lost out loud.
    const refusedButDone = ledger.completed - (accepted - ledger.lost);
    verdicts.push(
      ledger.lost === 0
        ? `books balance: ${formatCount(ledger.completed)} completed + ${formatCount(refused)} refused` +
            (refusedButDone > 0 ? ` - ${formatCount(refusedButDone)} refused yet stored` : '') +
            ` = ${formatCount(ledger.expected)} offered; nothing silently lost`
        : `books do not balance: ${formatCount(ledger.completed)} completed + ${formatCount(refused)} refused, ${formatCount(ledger.lost)} accepted and never completed`,
    );
    verdicts.push(...ledgerVerdicts(outcome).filter((line) => !line.includes('never accepted by the broker')));

    const table: ScenarioTable = { title: 'backlog', head: ['what', 'measured'], rows };
    return { ...outcome, verdicts, scenarioData: { tables: [table], histograms: {}, records: {}, values } };
  },
};
