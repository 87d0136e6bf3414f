// Consumers in child processes (src/runner/consumer-process.ts) as a ConsumerSet the pipeline books:
// spawn and connect them before the clock starts, start them, stop them, and for crash-recovery kill
// one with SIGKILL and start another in its place. Each child writes a journal (src/runner/journal.ts)
// in a directory made per set and removed by stop(); this side tails it and books every record into
// the pipeline's sink, and reads it to the end when the child exits, whatever the reason, so the
// parent's ledger stays the one source of truth and loses nothing a dead child did.
//
// LIMITATION: each child is a Node process started through tsx: tens of MB and about half a second
// of CPU to start (before the clock for the first set; inside the run for a replacement; the CPU the
// set reports starts when a child starts consuming). Bookings arrive up to ~20 ms late (the tail
// interval), and the in-hand count the drain watches is as fresh as the last read.

import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BrokerOptions, QueueSpec } from '../broker.ts';
import type { Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import type { ConsumerSet, SubscriberSink } from '../pipeline/sink.ts';
import { HOLD_WAIT_MS, type ChildMessage, type ConsumerProcessInit, type ParentMessage } from './consumer-protocol.ts';
import { FLUSH_INTERVAL_MS, JournalReader, type ConsumerActivity } from './journal.ts';
import type { ConsumerSetUsage } from '../outcome.ts';

const CHILD_SCRIPT = fileURLToPath(new URL('./consumer-process.ts', import.meta.url));
/** tsx's loader, so the child runs the same TypeScript sources as the parent. */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
/** How long a child gets to start, connect and prepare its queues (generous: other work shares the cores). */
const START_TIMEOUT_MS = 30_000;
/** How long a child gets to answer `freeze` (it waits up to HOLD_WAIT_MS to hold something) before it is killed anyway. */
const FREEZE_TIMEOUT_MS = HOLD_WAIT_MS + 5_000;
/** On stop, beyond the receive wait: how long a child gets to settle, close and say so before SIGKILL. */
const STOP_GRACE_MS = 5_000;
const STDERR_TAIL_CHARS = 1_000;
/** Consumer processes' own bounds, for the result's `limits`. */
export const PROCESS_LIMITS = { childStartMs: START_TIMEOUT_MS, childStopGraceMs: STOP_GRACE_MS } as const;

export interface ProcessConsumersOptions {
  /** Canonical adapter name. */
  readonly adapter: string;
  /** The parent's connection options, namespace and mode included. */
  readonly options: BrokerOptions;
  /** Queues the consumers read, as prepared by the parent; consumer c reads queues[c % queues.length]. */
  readonly queues: readonly QueueSpec[];
  /** Child processes; the consumers are spread over them as evenly as they go. */
  readonly processes: number;
  /** Consumers in all, at least one per process. */
  readonly consumers: number;
  readonly config: Pick<RunConfig, 'receiveBatch' | 'receiveWaitMs' | 'retryDelayMs' | 'messages' | 'task' | 'seed'>;
  readonly clock: Clock;
  /** Every delivery a child reported, after the sink has booked it. */
  readonly onDelivered?: (index: number, receivedUs: number, receiveCount: number, slot: number) => void;
  /** Every completion a child reported, after the sink has booked it. */
  readonly onCompleted?: (index: number, ackedUs: number, slot: number) => void;
  /**
   * Awaited before the processes are stopped: a kill the run has scheduled (crash-recovery's random
   * moment) happens before them, even when the work was done sooner, instead of finding no process to kill.
   */
  readonly beforeStop?: () => Promise<unknown> | undefined;
}

/** What a SIGKILL took with it, from the victim's journal read to its end. */
export interface CrashRecord {
  readonly slot: number;
  readonly pid: number;
  /** When the kill was sent, monotonic µs. */
  readonly killedUs: number;
  /** `staged`: frozen between broker calls first; `random`: killed wherever it was. */
  readonly mode: 'staged' | 'random';
  /** False when a staged victim did not answer `freeze` in time and was killed anyway. */
  readonly frozen: boolean;
  /** Delivered to it and not settled, in no ack or nack in flight: flat [index, receivedUs] pairs. */
  readonly held: number[];
  /** Messages in acks it had sent and not seen answered (booked as completed: duplicates if they come back). */
  readonly acking: number[];
  /** Messages in nacks it had sent and not seen answered. */
  readonly nacking: number[];
  /** Its consumers by what their last journal record says they were doing. */
  readonly activity: Record<ConsumerActivity, number>;
}

interface Child {
  readonly slot: number;
  readonly generation: number;
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
  readonly journal: JournalReader;
  /** What the journal said at its end; set once the process has exited. */
  final: ReturnType<JournalReader['end']> | undefined;
  /** Set when this side ended it on purpose (kill or stop), so its exit is not an error. */
  ending: boolean;
  /** Resolvers waiting for one message type from it. */
  readonly waiting: Map<ChildMessage['type'], (message: ChildMessage) => void>;
  stderrTail: string;
}

export class ProcessConsumers implements ConsumerSet {
  readonly #options: ProcessConsumersOptions;
  readonly #children: (Child | undefined)[];
  #sink: SubscriberSink | undefined;
  /** The run's token, given to prepare() before any child starts; every child (replacements too) gets it. */
  #runToken = '';
  #stopping = false;
  /** Replacements still starting, so stop() can wait for them. */
  readonly #starting = new Set<Promise<unknown>>();
  /** Where the journals are, made by the first spawn. */
  #dir: string | undefined;
  /** Every child's journal, dead ones included: their requests and CPU count too. */
  readonly #journals: JournalReader[] = [];
  #tail: NodeJS.Timeout | undefined;

  constructor(options: ProcessConsumersOptions) {
    if (!Number.isSafeInteger(options.processes) || options.processes < 1) {
      throw new RangeError(`processes must be a whole number of at least 1, not ${options.processes}`);
    }
    if (options.consumers < options.processes) {
      throw new RangeError(`${options.consumers} consumers cannot fill ${options.processes} processes`);
    }
    this.#options = options;
    this.#children = new Array<Child | undefined>(options.processes).fill(undefined);
  }

  /** Process ids by slot (0 for an empty slot). */
  get pids(): number[] {
    return this.#children.map((child) => child?.process.pid ?? 0);
  }

  async prepare(runToken: string): Promise<void> {
    this.#runToken = runToken;
    const started = await Promise.allSettled(this.#children.map((_, slot) => this.#spawn(slot, 0)));
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) {
      await this.stop();
      throw (failed as PromiseRejectedResult).reason;
    }
  }

  start(sink: SubscriberSink): void {
    this.#sink = sink;
    for (const child of this.#children) {
      if (!child) continue;
      child.journal.start(sink);
      post(child, { type: 'go' });
    }
    this.#tail = setInterval(() => {
      for (const child of this.#children) child?.journal.poll();
    }, FLUSH_INTERVAL_MS);
    this.#tail.unref();
  }

  inHand(): number {
    let count = 0;
    for (const child of this.#children) if (child) count += child.journal.inHand;
    return count;
  }

  /** Summed over every child's last journal record of them; undefined when the adapter counts none. */
  requestCounts(): { byKind: Record<string, number>; billed: number } | undefined {
    let total: { byKind: Record<string, number>; billed: number } | undefined;
    for (const journal of this.#journals) {
      if (!journal.requests) continue;
      total ??= { byKind: {}, billed: 0 };
      total.billed += journal.requests.billed;
      for (const [kind, n] of Object.entries(journal.requests.byKind)) total.byKind[kind] = (total.byKind[kind] ?? 0) + n;
    }
    return total;
  }

  /** CPU from each child's start of consuming to its last journal record, and the sum of their peak RSS. */
  usage(): ConsumerSetUsage | undefined {
    let processes = 0;
    let userUs = 0;
    let systemUs = 0;
    let rssKiB = 0;
    for (const journal of this.#journals) {
      if (!journal.usage) continue;
      processes++;
      userUs += journal.usage.userUs;
      systemUs += journal.usage.systemUs;
      rssKiB += journal.usage.maxRssKiB;
    }
    if (processes === 0) return undefined;
    return { processes, cpuUserMs: userUs / 1000, cpuSystemMs: systemUs / 1000, peakRssBytes: rssKiB * 1024 };
  }

  /**
   * Kills the process in `slot` with SIGKILL while it holds messages, staged: first it is asked to stop
   * making broker calls the moment it holds some (within HOLD_WAIT_MS), so no call is in flight when it
   * dies; if it does not answer within FREEZE_TIMEOUT_MS it is killed all the same (`frozen` false).
   * What it held comes from its journal either way.
   */
  async crash(slot: number): Promise<CrashRecord> {
    const child = this.#children[slot];
    if (!child) throw new Error(`no consumer process in slot ${slot}`);
    child.ending = true;
    const frozen = await this.#expect(child, 'frozen', FREEZE_TIMEOUT_MS, { type: 'freeze' }).then(
      () => true,
      () => false,
    );
    return this.#killNow(child, 'staged', frozen);
  }

  /** Kills the process in `slot` with SIGKILL at once, wherever it is (no handshake); what it held comes from its journal. */
  kill(slot: number): Promise<CrashRecord> {
    const child = this.#children[slot];
    if (!child) return Promise.reject(new Error(`no consumer process in slot ${slot}`));
    child.ending = true;
    return this.#killNow(child, 'random', false);
  }

  async #killNow(child: Child, mode: CrashRecord['mode'], frozen: boolean): Promise<CrashRecord> {
    const killedUs = this.#options.clock.nowUs();
    child.process.kill('SIGKILL');
    await child.exited;
    if (this.#children[child.slot] === child) this.#children[child.slot] = undefined;
    const final = child.final!;
    return { slot: child.slot, pid: child.process.pid ?? 0, killedUs, mode, frozen, ...final };
  }

  /** Starts a new process in an empty slot and sets it consuming; resolves when it does (monotonic µs). */
  async replace(slot: number, generation: number): Promise<number> {
    if (this.#children[slot]) throw new Error(`slot ${slot} still has a consumer process`);
    const spawning = this.#spawn(slot, generation);
    this.#starting.add(spawning);
    try {
      const child = await spawning;
      if (this.#stopping) {
        // stop() may have passed this slot already, and a child that is never stopped keeps this process
        // alive (its IPC channel): end it here. It never consumed, so it has nothing to report.
        child.ending = true;
        child.process.kill('SIGKILL');
        await child.exited;
        return this.#options.clock.nowUs();
      }
      if (this.#sink) {
        child.journal.start(this.#sink);
        post(child, { type: 'go' });
      }
      return this.#options.clock.nowUs();
    } finally {
      this.#starting.delete(spawning);
    }
  }

  async stop(): Promise<void> {
    await this.#options.beforeStop?.();
    this.#stopping = true;
    await Promise.allSettled([...this.#starting]);
    const waitMs = this.#options.config.receiveWaitMs + STOP_GRACE_MS;
    await Promise.all(
      this.#children.map(async (child, slot) => {
        if (!child) return;
        child.ending = true;
        await this.#expect(child, 'stopped', waitMs, { type: 'stop' }).catch(() => undefined);
        if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
        await child.exited;
        this.#children[slot] = undefined;
      }),
    );
    clearInterval(this.#tail);
    if (this.#dir) {
      rmSync(this.#dir, { recursive: true, force: true });
      liveDirs.delete(this.#dir);
      this.#dir = undefined;
    }
  }

  /** Forks a child, sends it its share of the consumers and waits until it has connected. */
  async #spawn(slot: number, generation: number): Promise<Child> {
    const { options, queues, processes, consumers, config, adapter } = this.#options;
    if (!this.#dir) {
      this.#dir = mkdtempSync(path.join(tmpdir(), 'brokerbench-journal-'));
      liveDirs.add(this.#dir);
    }
    // Consumer c (0-based over all processes) reads queues[c % queues.length], as in the pipeline.
    const share = Math.floor(consumers / processes) + (slot < consumers % processes ? 1 : 0);
    const first = slot * Math.floor(consumers / processes) + Math.min(slot, consumers % processes);
    const consumerQueues = Array.from({ length: share }, (_, k) => queues[(first + k) % queues.length]!.name);
    const journalPath = path.join(this.#dir, `slot-${slot}-generation-${generation}.journal`);
    writeFileSync(journalPath, '');
    const journal = new JournalReader(journalPath, consumerQueues.length, {
      onDelivered: (index, receivedUs, receiveCount) => this.#options.onDelivered?.(index, receivedUs, receiveCount, slot),
      onCompleted: (index, ackedUs) => this.#options.onCompleted?.(index, ackedUs, slot),
    });
    this.#journals.push(journal);
    const proc = fork(CHILD_SCRIPT, [], {
      execArgv: ['--import', TSX_LOADER],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    liveChildren.add(proc);
    ensureExitHook();
    let child: Child | undefined;
    // The journal is read to its end before anyone waiting for the exit goes on: a dead child's
    // bookings are in the sink by then.
    const exited = new Promise<void>((resolve) => {
      const end = (): void => {
        if (child && !child.final) child.final = journal.end();
        resolve();
      };
      proc.once('exit', end);
      proc.once('error', end);
    });
    child = { slot, generation, process: proc, exited, journal, final: undefined, ending: false, waiting: new Map(), stderrTail: '' };
    proc.stderr?.on('data', (chunk: Buffer) => {
      child.stderrTail = (child.stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_CHARS);
    });
    proc.on('message', (message: ChildMessage) => this.#onMessage(child, message));
    void exited.then(() => this.#onExit(child));
    this.#children[slot] = child;

    const init: ConsumerProcessInit = {
      type: 'init',
      adapter,
      options,
      queues,
      consumerQueues,
      receiveBatch: config.receiveBatch,
      receiveWaitMs: config.receiveWaitMs,
      retryDelayMs: config.retryDelayMs,
      messages: config.messages,
      runToken: this.#runToken,
      task: config.task,
      seed: config.seed + 7919 * slot + 104_729 * generation,
      journalPath,
    };
    try {
      await this.#expect(child, 'ready', START_TIMEOUT_MS, init);
    } catch (error) {
      child.ending = true;
      proc.kill('SIGKILL');
      await exited;
      this.#children[slot] = undefined;
      throw error;
    }
    return child;
  }

  /** Sends `message` (if any) and waits for an answer of `type`; rejects on a fatal answer, an exit or the timeout. */
  #expect(child: Child, type: ChildMessage['type'], timeoutMs: number, message?: ParentMessage): Promise<ChildMessage> {
    return new Promise<ChildMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.waiting.delete(type);
        reject(new Error(`consumer process ${child.slot} (pid ${child.process.pid}) did not answer ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      child.waiting.set(type, (answer) => {
        clearTimeout(timer);
        child.waiting.delete(type);
        if (answer.type === 'fatal') reject(new Error(`consumer process ${child.slot}: ${answer.message}`));
        else resolve(answer);
      });
      if (message) post(child, message);
    });
  }

  #onMessage(child: Child, message: ChildMessage): void {
    if (message.type === 'fatal') {
      this.#sink?.error('process', `consumer process ${child.slot} (pid ${child.process.pid}): ${message.message}`);
      for (const waiter of [...child.waiting.values()]) waiter(message);
      return;
    }
    child.waiting.get(message.type)?.(message);
  }

  #onExit(child: Child): void {
    liveChildren.delete(child.process);
    const fatal: ChildMessage = {
      type: 'fatal',
      message: `exited (${child.process.signalCode ?? `code ${child.process.exitCode}`})${tail(child.stderrTail)}`,
    };
    for (const waiter of [...child.waiting.values()]) waiter(fatal);
    if (this.#children[child.slot] === child) this.#children[child.slot] = undefined;
    if (!child.ending) this.#sink?.error('process', `consumer process ${child.slot} (pid ${child.process.pid}) ${fatal.message}`);
  }
}

function post(child: Child, message: ParentMessage): void {
  if (child.process.connected) child.process.send(message, undefined, {}, () => undefined);
}

function tail(stderr: string): string {
  const line = stderr.trim().split('\n').at(-1)?.trim();
  return line ? `: ${line}` : '';
}

// Children must not outlive this process, however it ends; nor their journals.
const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

/** Pids of the consumer processes alive right now, for tests that kill one from outside, unannounced. */
export function consumerProcessIds(): number[] {
  return [...liveChildren].flatMap((child) => (child.pid === undefined || child.exitCode !== null || child.signalCode !== null ? [] : [child.pid]));
}

function ensureExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}
