// What a consumer process (src/runner/consumer-process.ts) and its parent (src/runner/process-consumers.ts)
// say to each other over IPC: control only, every booking goes through the journal. Apart from the
// child's code, so the parent imports the messages without the adapter registry the child opens.

import type { BrokerOptions, QueueSpec } from '../broker.ts';
import type { TaskSpec } from '../config.ts';

/** The parent's first message: everything the child needs to consume like an in-process consumer. */
export interface ConsumerProcessInit {
  readonly type: 'init';
  /** Canonical adapter name, e.g. `redis-list`. */
  readonly adapter: string;
  /** The parent's connection options, namespace and mode included (the URL may hold a password). */
  readonly options: BrokerOptions;
  /** Queues to prepare (idempotent: the parent prepared them already; adapters keep specs per handle). */
  readonly queues: readonly QueueSpec[];
  /** One consumer per entry, reading that queue. */
  readonly consumerQueues: readonly string[];
  readonly receiveBatch: number;
  readonly receiveWaitMs: number;
  readonly retryDelayMs: number;
  /** Messages in the run: bodies with an index at or above this are not ours. */
  readonly messages: number;
  /** The run's token: bodies without it are foreign (src/pipeline/message.ts). */
  readonly runToken: string;
  readonly task: TaskSpec;
  /** Seed for this process's task durations and failures. */
  readonly seed: number;
  /** The journal file (made by the parent) this process appends its bookings to. */
  readonly journalPath: string;
}

/** What the parent sends. */
export type ParentMessage = ConsumerProcessInit | { readonly type: 'go' | 'freeze' | 'stop' };

/** What the child sends: control only; every booking goes through the journal. */
export type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'fatal'; readonly message: string }
  /** Answer to `freeze`: no broker call in flight any more, and the journal says what is held. */
  | { readonly type: 'frozen' }
  | { readonly type: 'stopped' };

/** On `freeze`, how long to wait for the consumers to hold something before freezing empty-handed. */
export const HOLD_WAIT_MS = 5_000;
