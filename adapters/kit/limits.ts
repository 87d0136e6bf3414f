// The limits a broker declares in its capabilities, checked before its driver is called. Each check
// returns the sentence a refusal says, or undefined: nothing is allocated on the way through.

import type { BrokerCapabilities, OutgoingMessage, QueueSpec, ReceiveOptions } from '../../src/broker.ts';
import type { LimitFacts } from './driver.ts';

/** UTF-8 takes at most 3 bytes per UTF-16 code unit: a body this many units long or shorter always fits. */
const UTF8_BYTES_PER_UNIT = 3;

export class Limits {
  readonly #capabilities: BrokerCapabilities;
  readonly #owner: string;
  readonly #noDelay: string;
  readonly #maxPublish: number;
  /** Bodies no longer than this (in code units) are under maxPayloadBytes without counting their bytes. */
  readonly #surelyFits: number;
  readonly #maxNackDelayMs: number;

  constructor(adapter: string, mode: string, capabilities: BrokerCapabilities, facts: LimitFacts = {}) {
    this.#capabilities = capabilities;
    this.#owner = facts.owner ?? `${adapter}'s`;
    this.#noDelay = facts.noDelay ?? `${adapter} cannot delay messages in ${mode} mode`;
    this.#maxPublish = facts.splitsPublish ? Infinity : capabilities.maxBatchSize;
    this.#surelyFits = Math.floor(capabilities.maxPayloadBytes / UTF8_BYTES_PER_UNIT);
    this.#maxNackDelayMs = capabilities.maxNackDelayMs ?? capabilities.maxDelayMs;
  }

  /** Batch length, every body's size and every delay, so a refused batch writes nothing. */
  publish(messages: readonly OutgoingMessage[]): string | undefined {
    if (messages.length > this.#maxPublish) {
      return `batch of ${messages.length} messages over ${this.#owner} maximum of ${this.#maxPublish} per call`;
    }
    const { maxPayloadBytes, delay, maxDelayMs } = this.#capabilities;
    for (let i = 0; i < messages.length; i++) {
      const { body, delayMs } = messages[i]!;
      if (body.length > this.#surelyFits) {
        const bytes = Buffer.byteLength(body, 'utf8');
        if (bytes > maxPayloadBytes) return `message of ${bytes} bytes over ${this.#owner} maximum of ${maxPayloadBytes} bytes`;
      }
      if (delayMs === undefined || delayMs === 0) continue;
      if (!(delayMs > 0)) return `delayMs must be a number of 0 or more, got ${delayMs}`;
      if (!delay) return this.#noDelay;
      if (delayMs > maxDelayMs) return `delay of ${delayMs} ms over ${this.#owner} maximum of ${duration(maxDelayMs)}`;
    }
    return undefined;
  }

  receive({ maxMessages, waitMs }: ReceiveOptions): string | undefined {
    const most = this.#capabilities.maxBatchSize;
    if (!(Number.isInteger(maxMessages) && maxMessages >= 1 && maxMessages <= most)) {
      return `maxMessages must be a whole number from 1 to ${most}, got ${maxMessages}`;
    }
    if (!(waitMs >= 0)) return `waitMs must be a number of 0 or more, got ${waitMs}`;
    return undefined;
  }

  /** Where nack delays are not declared, a delay is ignored (the message comes back at once), not refused. */
  nack(retryDelayMs: number): string | undefined {
    if (!(retryDelayMs >= 0)) return `retryDelayMs must be a number of 0 or more, got ${retryDelayMs}`;
    if (this.#capabilities.nackDelay && retryDelayMs > this.#maxNackDelayMs) {
      return `retry delay of ${retryDelayMs} ms over ${this.#owner} maximum of ${duration(this.#maxNackDelayMs)}`;
    }
    return undefined;
  }

  prepare({ name, visibilityTimeoutMs, maxReceives }: QueueSpec): string | undefined {
    if (typeof name !== 'string' || name === '') return 'the queue name is empty';
    if (!(visibilityTimeoutMs > 0 && Number.isFinite(visibilityTimeoutMs))) {
      return `visibilityTimeoutMs must be a number of ms over 0, got ${visibilityTimeoutMs}`;
    }
    if (!(Number.isInteger(maxReceives) && maxReceives >= 0)) return `maxReceives must be a whole number of 0 or more, got ${maxReceives}`;
    return undefined;
  }
}

/** `900 s` for whole seconds, else `1500 ms`. */
function duration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
