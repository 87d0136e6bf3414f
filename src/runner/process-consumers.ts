// Consumers in child processes (src/runner/consumer-process.ts) as a ConsumerSet the pipeline books:
// spawn and connect them before the clock starts, start them, stop them, and for crash-recovery kill
// one with SIGKILL and start another in its place. Every report goes to the pipeline's sink, so the
// parent's ledger stays the one source of truth.
//
// LIMITATION: each child is a Node process started through tsx: tens of MB and about half a second
// of CPU to start (before the clock for the first set; inside the run for a replacement). Reports
// arrive up to ~20 ms late, and the in-hand count the drain watches is as fresh as the last report.

import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BrokerOptions, QueueSpec } from '../broker.ts';
import type { Clock } from '../clock.ts';
import type { RunConfig } from '../config.ts';
import type { ConsumerSet, SubscriberSink } from '../pipeline/subscriber.ts';
import { HOLD_WAIT_MS, type ChildMessage, type ConsumerProcessInit, type ConsumerReport, type ParentMessage } from './consumer-process.ts';

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
}

/** What a SIGKILL took with it. */
export interface CrashRecord {
  readonly slot: number;
  readonly pid: number;
  /** When the kill was sent, monotonic µs. */
  readonly killedUs: number;
  /** The messages it held, flat [index, receivedUs] pairs; undefined if it did not say in time. */
  readonly held: number[] | undefined;
}

interface Child {
  readonly slot: number;
  readonly generation: number;
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
  /** Messages in its hands, from its last report. */
  inHand: number;
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
    for (const child of this.#children) if (child) post(child, { type: 'go' });
  }

  inHand(): number {
    let count = 0;
    for (const child of this.#children) if (child) count += child.inHand;
    return count;
  }

  /**
   * Kills the process in `slot` with SIGKILL while it holds messages. First it is asked to stop making
   * broker calls the moment it holds some (within HOLD_WAIT_MS) and to list them, so the books know
   * exactly what died with it; if it does not answer within FREEZE_TIMEOUT_MS it is killed all the same
   * and `held` is undefined.
   */
  async crash(slot: number): Promise<CrashRecord> {
    const child = this.#children[slot];
    if (!child) throw new Error(`no consumer process in slot ${slot}`);
    child.ending = true;
    let held: number[] | undefined;
    try {
      const answer = await this.#expect(child, 'frozen', FREEZE_TIMEOUT_MS, { type: 'freeze' });
      held = answer.type === 'frozen' ? answer.held : undefined;
    } catch {
      held = undefined;
    }
    const killedUs = this.#options.clock.nowUs();
    child.process.kill('SIGKILL');
    await child.exited;
    this.#children[slot] = undefined;
    return { slot, pid: child.process.pid ?? 0, killedUs, held };
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
      if (this.#sink) post(child, { type: 'go' });
      return this.#options.clock.nowUs();
    } finally {
      this.#starting.delete(spawning);
    }
  }

  async stop(): Promise<void> {
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
  }

  /** Forks a child, sends it its share of the consumers and waits until it has connected. */
  async #spawn(slot: number, generation: number): Promise<Child> {
    const { options, queues, processes, consumers, config, adapter } = this.#options;
    const proc = fork(CHILD_SCRIPT, [], {
      execArgv: ['--import', TSX_LOADER],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    liveChildren.add(proc);
    ensureExitHook();
    const exited = new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.once('error', () => resolve());
    });
    const child: Child = { slot, generation, process: proc, exited, inHand: 0, ending: false, waiting: new Map(), stderrTail: '' };
    proc.stderr?.on('data', (chunk: Buffer) => {
      child.stderrTail = (child.stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_CHARS);
    });
    proc.on('message', (message: ChildMessage) => this.#onMessage(child, message));
    void exited.then(() => this.#onExit(child));
    this.#children[slot] = child;

    // Consumer c (0-based over all processes) reads queues[c % queues.length], as in the pipeline.
    const share = Math.floor(consumers / processes) + (slot < consumers % processes ? 1 : 0);
    const first = slot * Math.floor(consumers / processes) + Math.min(slot, consumers % processes);
    const consumerQueues = Array.from({ length: share }, (_, k) => queues[(first + k) % queues.length]!.name);
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
    if (message.type === 'report') {
      this.#book(child, message.report);
      return;
    }
    if (message.type === 'fatal') {
      this.#sink?.error('process', `consumer process ${child.slot} (pid ${child.process.pid}): ${message.message}`);
      for (const waiter of [...child.waiting.values()]) waiter(message);
      return;
    }
    child.waiting.get(message.type)?.(message);
  }

  #book(child: Child, report: ConsumerReport): void {
    child.inHand = report.inHand;
    const sink = this.#sink;
    if (!sink) return;
    const { onDelivered, onCompleted } = this.#options;
    const d = report.delivered;
    for (let k = 0; k < d.length; k += 4) {
      sink.delivered(d[k]!, d[k + 1]!, d[k + 2]!, d[k + 3]!);
      onDelivered?.(d[k]!, d[k + 2]!, d[k + 3]!, child.slot);
    }
    for (let k = 0; k < report.malformed; k++) sink.malformed();
    for (let k = 0; k < report.foreign; k++) sink.foreign();
    const x = report.executed;
    for (let k = 0; k < x.length; k += 2) sink.executed(x[k]!, x[k + 1]!);
    const f = report.failed;
    for (let k = 0; k < f.length; k += 2) sink.failed(f[k]!, f[k + 1]!);
    for (let k = 0; k < report.receiveCalls; k++) sink.receiveCall(k < report.emptyReceives);
    const c = report.completed;
    for (let k = 0; k < c.length; k += 3) {
      sink.completed(c[k]!, c[k + 1]!, c[k + 2]!);
      onCompleted?.(c[k]!, c[k + 2]!, child.slot);
    }
    for (const [operation, text] of report.errors) sink.error(operation as 'receive' | 'ack' | 'nack', text);
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

// Children must not outlive this process, however it ends.
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function ensureExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
  });
}
