// crash-recovery: the consumers run as separate processes (--processes, default 2); once --kill-at of
// the messages are done (default 0.3), one process is killed with SIGKILL while it holds messages and
// a new one is started in its place. What the broker does with the dead consumer's messages is the
// measurement: delivered again (and how long after their first delivery: the redelivery delay
// histogram) or gone. The seed's RPUSH/LPOP queue (redis-list simple) loses them; the reliable list,
// streams and SQS give them back after the visibility timeout (default 2 s here).
//
// --kill-mode random (the default) sends SIGKILL a seeded 0 to MAX_KILL_DELAY_MS after that point,
// with no warning: the victim may be receiving, executing or acking. --kill-mode staged first tells it
// to stop making broker calls the moment it next holds messages, and kills it once it answers. Either
// way its connections are still open, so the broker sees a consumer that vanished mid-work, and the
// victim's journal (src/runner/journal.ts), read to its end, says what it held (delivered, not
// settled), what it was acking, and what each of its consumers was doing.
//
// LIMITATION: a receive in transit when the victim died leaves no trace: at-least-once brokers give
// those messages again after the visibility timeout, at-most-once ones lose them before anyone saw
// them (named apart in the verdict). An ack in flight is booked as done; if it never reached the
// broker its messages come back as duplicates. The redelivery delay is bounded below by the
// visibility timeout (SQS rounds it up to whole seconds; redis-stream adds its claim interval and
// Redis' 100 ms blocking tick). Child processes add their own start-up time to the replacement.

import { UsageError } from '../src/errors.ts';
import { seededRandom } from '../src/pipeline/executor.ts';
import { createLatencyHistogram, recordLatency, summarize } from '../src/metrics/histogram.ts';
import { formatCount, formatLatency } from '../src/format.ts';
import { runPipeline } from '../src/runner/pipeline.ts';
import { ProcessConsumers, type CrashRecord } from '../src/runner/process-consumers.ts';
import { seconds } from './kit.ts';
import { ledgerVerdicts } from './verdicts.ts';
import type { Scenario } from '../src/scenario.ts';
import type { ScenarioOutcome, ScenarioTable } from '../src/outcome.ts';

/** The process killed: always the first slot. */
const VICTIM_SLOT = 0;
/** --kill-mode random: the kill comes a seeded 0 to this many ms after --kill-at is reached. */
const MAX_KILL_DELAY_MS = 300;

/** What happened to the killed consumer's messages, from the deliveries every process reported. */
export class RecoveryTracker {
  /** Messages the victim held, by index: its (first) delivery time, µs; removed once delivered again. */
  readonly #waiting = new Map<number, number>();
  readonly #completed: Uint8Array;
  readonly #delivered: Uint8Array;
  readonly redelivery = createLatencyHistogram();
  held = 0;
  redelivered = 0;
  /** Deliveries with a receive count above 1 of messages the victim did not hold. */
  otherRedeliveries = 0;
  lastRedeliveryUs = 0;

  constructor(messages: number) {
    this.#completed = new Uint8Array(messages);
    this.#delivered = new Uint8Array(messages);
  }

  /**
   * Every delivery booked from the moment the kill began until arm(), by index, in booking order: what the
   * victim held can come back before its own journal has been read to the end and arm() runs (RabbitMQ
   * gives a dead consumer's messages back as its connection closes, within milliseconds). All of them,
   * not the first: a random kill comes up to MAX_KILL_DELAY_MS after killing(), and the victim's own
   * delivery of a message in that time is booked here before its redelivery. Undefined otherwise.
   */
  #sinceKill: Map<number, { receivedUs: number; receiveCount: number }[]> | undefined;

  /** The kill is about to happen: deliveries from now on are kept until arm() says which were the victim's. */
  killing(): void {
    this.#sinceKill = new Map();
  }

  /** The victim's holdings, flat [index, receivedUs] pairs, from now on watched for redelivery. */
  arm(held: readonly number[]): void {
    const early = this.#sinceKill ?? new Map<number, { receivedUs: number; receiveCount: number }[]>();
    this.#sinceKill = undefined;
    for (let k = 0; k < held.length; k += 2) {
      const index = held[k]!;
      const firstUs = held[k + 1]!;
      const again = early.get(index)?.find((delivery) => delivery.receivedUs > firstUs);
      if (again !== undefined) {
        // Back already, and counted among the others then: it was the victim's.
        if (again.receiveCount > 1) this.otherRedeliveries--;
        this.#redeliveredAt(again.receivedUs - firstUs, again.receivedUs);
      } else {
        this.#waiting.set(index, firstUs);
      }
    }
    this.held = new Set(held.filter((_, k) => k % 2 === 0)).size;
  }

  #redeliveredAt(delayUs: number, receivedUs: number): void {
    this.redelivered++;
    recordLatency(this.redelivery, delayUs);
    if (receivedUs > this.lastRedeliveryUs) this.lastRedeliveryUs = receivedUs;
  }

  delivered(index: number, receivedUs: number, receiveCount: number): void {
    this.#delivered[index] = 1;
    if (this.#sinceKill !== undefined) this.#sinceKill.set(index, [...(this.#sinceKill.get(index) ?? []), { receivedUs, receiveCount }]);
    const firstUs = this.#waiting.get(index);
    if (firstUs === undefined) {
      if (receiveCount > 1) this.otherRedeliveries++;
      return;
    }
    this.#waiting.delete(index);
    this.#redeliveredAt(receivedUs - firstUs, receivedUs);
  }

  completed(index: number): void {
    this.#completed[index] = 1;
  }

  /** Messages never delivered to any consumer. */
  neverDelivered(): number {
    let count = 0;
    for (const seen of this.#delivered) count += 1 - seen;
    return count;
  }

  /** Held messages never delivered again, and how many of those were completed anyway (by someone before the kill). */
  neverBack(): { count: number; completedAnyway: number } {
    let completedAnyway = 0;
    for (const index of this.#waiting.keys()) completedAnyway += this.#completed[index]!;
    return { count: this.#waiting.size, completedAnyway };
  }
}

export const crashRecovery: Scenario = {
  name: 'crash-recovery',
  measures: 'what happens to the messages a consumer process held when it is killed with SIGKILL: lost, duplicated, and the redelivery delay',
  limitations: 'a receive in transit at the kill leaves no trace in the journal: its messages are named only as never delivered to anyone',
  requires: [],
  // A steady rate under what the consumers can do, so no backlog stands in front of the redelivered messages.
  defaults: {
    messages: 3000,
    ratePerSec: 500,
    consumerProcesses: 2,
    consumers: 4,
    receiveBatch: 10,
    receiveWaitMs: 500,
    visibilityTimeoutMs: 2000,
    task: { durationMs: 50, distribution: 'fixed', work: 'sleep' },
  },
  configure(config) {
    if (config.consumerProcesses < 1) {
      throw new UsageError('scenario crash-recovery runs its consumers as processes: give --processes 1 or more (default 2)');
    }
    if (config.taskConcurrency > 0) {
      throw new UsageError('scenario crash-recovery runs whole batches in each consumer process: leave --concurrency out');
    }
    return config;
  },
  async run(context): Promise<ScenarioOutcome> {
    const { config, connection } = context;
    if (!connection) throw new Error('crash-recovery needs the connection the broker was opened with (ScenarioContext.connection)');
    const { clock } = context;
    const tracker = new RecoveryTracker(config.messages);
    const killAfter = Math.max(1, Math.ceil(config.messages * config.killAtFraction));
    let completions = 0;
    // Drawn from the seed, so a run can be repeated kill for kill (as far as the timing allows).
    const killDelayMs = Math.floor(seededRandom(config.seed ^ 0x6b696c6c)() * MAX_KILL_DELAY_MS);
    // Settles to the record or to what went wrong, handled from the start: the replacement can die while
    // it starts (an outside kill), long before the run is over and anyone awaits this.
    let crash: Promise<{ record: CrashRecord; replacedUs: number } | Error> | undefined;
    const consumers: ProcessConsumers = new ProcessConsumers({
      adapter: connection.adapter,
      options: connection.options,
      queues: context.queues.map((name) => ({ name, visibilityTimeoutMs: config.visibilityTimeoutMs, maxReceives: config.maxReceives })),
      processes: config.consumerProcesses,
      consumers: config.consumers,
      config,
      clock,
      onDelivered: (index, receivedUs, receiveCount) => tracker.delivered(index, receivedUs, receiveCount),
      // The kill is at a random moment after killAfter completions; a run whose work ends sooner waits for it,
      // so the victim is killed (holding nothing) rather than stopped first and the kill finding no process.
      beforeStop: () => crash,
      onCompleted: (index) => {
        tracker.completed(index);
        if (++completions === killAfter) {
          crash = (async () => {
            let record: CrashRecord;
            tracker.killing();
            if (config.killMode === 'staged') {
              record = await consumers.crash(VICTIM_SLOT);
            } else {
              await new Promise((resolve) => setTimeout(resolve, killDelayMs));
              record = await consumers.kill(VICTIM_SLOT);
            }
            tracker.arm(record.held);
            const replacedUs = await consumers.replace(VICTIM_SLOT, 1);
            return { record, replacedUs };
          })().catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
        }
      },
    });
    const outcome = await runPipeline({ ...context, consumers });
    const crashed = crash ? await crash : undefined;

    const verdicts: string[] = [];
    const atMostOnce = context.broker.capabilities.delivery === 'at-most-once';
    // How a dead consumer's messages come back: after a visibility timeout, or (RabbitMQ) as soon as its connection closes.
    const visibilityTimeout = context.broker.capabilities.visibilityTimeout;
    const redelivery = summarize(tracker.redelivery);
    const never = tracker.neverBack();
    const rows: string[][] = [];
    let specificLoss = false;
    if (crashed === undefined) {
      verdicts.push(`no consumer was killed: the run ended before ${formatCount(killAfter)} messages were done`);
    } else if (crashed instanceof Error) {
      verdicts.push(`the kill went wrong: ${crashed.message}`);
    } else {
      const { record, replacedUs } = crashed;
      const killedSec = seconds(record.killedUs - outcome.startUs);
      const held = record.held.length / 2;
      const how =
        record.mode === 'random'
          ? `at a random moment (${formatCount(killDelayMs)} ms after ${formatCount(killAfter)} completions, no warning)`
          : `after ${formatCount(killAfter)} completions, ${record.frozen ? 'frozen between broker calls first' : 'killed unfrozen (it did not answer freeze in time)'}`;
      verdicts.push(
        `killed consumer process ${record.slot} (pid ${record.pid}) with SIGKILL at ${killedSec}, ${how}, holding ${messages(held)}` +
          (record.acking.length > 0 ? ` and acking ${formatCount(record.acking.length)} more (booked as completed)` : '') +
          `; its consumers were ${doing(record)}; its replacement was consuming ${seconds(replacedUs - record.killedUs)} later`,
      );
      rows.push(['killed at', `${killedSec} (process ${record.slot}, pid ${record.pid}, ${record.mode})`]);
      rows.push(['messages it held', formatCount(held)]);
      rows.push(['in acks unanswered (booked done)', formatCount(record.acking.length)]);
      if (record.nacking.length > 0) rows.push(['in nacks unanswered', formatCount(record.nacking.length)]);
      rows.push(['its consumers were', doing(record)]);
      rows.push(['replacement consuming after', seconds(replacedUs - record.killedUs)]);
      if (atMostOnce && outcome.ledger.lost > 0) {
        // Popped by a receive still in transit when it died: never delivered to anyone, so not in its journal.
        specificLoss = true;
        const heldLost = never.count - never.completedAnyway;
        const inTransit = tracker.neverDelivered();
        const other = outcome.ledger.lost - heldLost - inTransit;
        verdicts.push(
          `LOST ${formatCount(outcome.ledger.lost)}: at-most-once mode, ${formatCount(heldLost)} the killed consumer held (received, not completed)` +
            ` and ${formatCount(inTransit)} never delivered to anyone (popped by a receive in transit when it died)` +
            (other !== 0 ? `; ${formatCount(other)} otherwise` : ''),
        );
      } else if (held > 0) {
        rows.push(['delivered again', `${formatCount(tracker.redelivered)} of ${formatCount(held)}`]);
        if (tracker.redelivered > 0) {
          rows.push(['redelivery delay p50 / max', `${formatLatency(redelivery.p50)} / ${formatLatency(redelivery.max)}`]);
          rows.push(['last one back after the kill', seconds(tracker.lastRedeliveryUs - record.killedUs)]);
        }
        if (never.count === 0) {
          verdicts.push(
            `${held === 1 ? 'the 1 message it held was' : `all ${messages(held)} it held were`} delivered again, ${formatLatency(redelivery.p50)} (p50) to ${formatLatency(redelivery.max)} (max) ` +
              `after their first delivery (${visibilityTimeout ? `visibility timeout ${formatLatency(config.visibilityTimeoutMs * 1000)}` : 'given back as its connection closed'}); ` +
              `the last ${seconds(tracker.lastRedeliveryUs - record.killedUs)} after the kill`,
          );
        } else {
          verdicts.push(
            `${formatCount(never.count)} of the ${messages(held)} it held never came back` +
              (never.completedAnyway > 0 ? ` (${formatCount(never.completedAnyway)} of them had been completed by another consumer before the kill)` : ''),
          );
        }
      } else if (held === 0) {
        verdicts.push('it held no messages when it died: nothing to recover (give tasks more time, --task-ms)');
      }
    }
    rows.push(['lost', formatCount(outcome.ledger.lost)]);
    rows.push(['duplicate deliveries', formatCount(outcome.ledger.duplicateDeliveries)]);
    const explainDuplicates = outcome.ledger.duplicateDeliveries > 0 && !atMostOnce;
    if (explainDuplicates) {
      const others = tracker.otherRedeliveries;
      // With a visibility timeout, other redeliveries are messages a live consumer still held, so duplicates too;
      // without one they can only be what the broker had sent the killed process that no consumer had yet.
      const otherLine = visibilityTimeout
        ? `, ${formatCount(others)} other redeliveries (visibility timeout ran out on messages still in a consumer's hands)`
        : `; besides, ${formatCount(others)} redeliveries of messages the broker had sent the killed process that no consumer had taken yet (not duplicates)`;
      verdicts.push(
        `${formatCount(outcome.ledger.duplicateDeliveries)} duplicate deliveries: ${formatCount(tracker.redelivered)} of them the killed consumer's messages` +
          (others > 0 ? otherLine : ''),
      );
    }
    // The general lines, without a second LOST or duplicates line when the crash's own lines told it.
    verdicts.push(
      ...ledgerVerdicts(outcome).filter(
        (line) => !(specificLoss && line.startsWith('LOST ')) && !(explainDuplicates && line.includes(' duplicate deliveries')),
      ),
    );

    const table: ScenarioTable = { title: 'crash and recovery', head: ['what', 'measured'], rows };
    const record = crashed && !(crashed instanceof Error) ? crashed.record : undefined;
    return {
      ...outcome,
      verdicts,
      scenarioData: {
        tables: [table],
        histograms: { redelivery: tracker.redelivery },
        records: {},
        values: {
          processes: config.consumerProcesses,
          killAfterCompletions: killAfter,
          killMode: config.killMode,
          killDelayMs: config.killMode === 'random' ? killDelayMs : null,
          killedAtSec: record ? (record.killedUs - outcome.startUs) / 1e6 : null,
          heldMessages: record ? record.held.length / 2 : null,
          ackingMessages: record ? record.acking.length : null,
          nackingMessages: record ? record.nacking.length : null,
          victimActivity: record ? doing(record) : null,
          neverDeliveredMessages: tracker.neverDelivered(),
          redeliveredMessages: tracker.redelivered,
          neverRedeliveredMessages: never.count,
          otherRedeliveries: tracker.otherRedeliveries,
          replacementAfterKillSec: crashed && !(crashed instanceof Error) ? (crashed.replacedUs - crashed.record.killedUs) / 1e6 : null,
          lastRedeliveryAfterKillSec: record && tracker.lastRedeliveryUs > 0 ? (tracker.lastRedeliveryUs - record.killedUs) / 1e6 : null,
        },
      },
    };
  },
};

/** `2 executing, 1 acking`: the victim's consumers by what they were doing. */
function doing(record: CrashRecord): string {
  const parts = Object.entries(record.activity)
    .filter(([, n]) => n > 0)
    .map(([what, n]) => `${formatCount(n)} ${what}`);
  return parts.length > 0 ? parts.join(', ') : 'not yet consuming';
}

/** `1 message`, `20 messages`. */
function messages(count: number): string {
  return `${formatCount(count)} message${count === 1 ? '' : 's'}`;
}
