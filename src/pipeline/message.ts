// The message body: the seed's `{p, m, i}` plus the send time and the run's token, padded to a chosen
// size. `r` ties the body to one run, `i` is the index the ledger tracks, `t` the (intended) send time
// in monotonic microseconds. A body without the run's token is foreign: something else wrote it (a
// peer, an earlier run, a forged send), and it must never be booked as one of the run's deliveries.
//
// LIMITATION: `t` is the monotonic clock of this host (src/clock.ts): a body read on another machine
// gives no meaningful latency. Bodies not in the encoder's exact layout fall back to JSON.parse. The
// token is random, not secret: a peer that reads a body of the run can forge more (it tells stray
// and forged bodies apart from the run's own, not a hostile peer that listens in).

import { randomBytes } from 'node:crypto';

export interface MessageStamp {
  /** Index of the message within the run, 0-based. */
  readonly i: number;
  /** Send time (or intended send time under a fixed rate), monotonic µs; whole µs in encoded bodies. */
  readonly t: number;
}

/** A decoded body carrying another run's token, or none: well-formed, but not this run's message. */
export const FOREIGN: unique symbol = Symbol('foreign');

/** Hex characters in a run token (8 random bytes). */
export const RUN_TOKEN_LENGTH = 16;
const RUN_TOKEN_PATTERN = /^[0-9a-f]{16}$/;

/** A fresh run token: 16 hex characters from the system's random source. */
export function newRunToken(): string {
  return randomBytes(RUN_TOKEN_LENGTH / 2).toString('hex');
}

const PHONE = '+5511999999999';

/**
 * Builds bodies of a fixed target size. The hot path does little per message: the part after the
 * index is made once per send time (a whole publish batch shares one), and each padding length once.
 * Send times are written in whole microseconds, so the decoder reads them back without a float parse.
 */
export class MessageEncoder {
  readonly #payloadBytes: number;
  /** `{"r":"<token>","i":`, the same for every body of the run. */
  readonly #head: string;
  /** `x`-padding plus the closing `"}`, by padding length. */
  readonly #tails: string[] = [];
  #lastT = Number.NaN;
  /** `,"t":…,"p":"…","m":"` for #lastT. */
  #middle = '';

  constructor(payloadBytes: number, runToken: string) {
    if (!RUN_TOKEN_PATTERN.test(runToken)) throw new RangeError(`a run token is ${RUN_TOKEN_LENGTH} lower-case hex characters, not "${runToken}"`);
    this.#payloadBytes = payloadBytes;
    this.#head = `{"r":"${runToken}","i":`;
  }

  /** `{"r":"…","i":…,"t":…,"p":"…","m":"xxx…"}`, `payloadBytes` long unless the fields alone are longer. */
  encode(i: number, t: number): string {
    if (t !== this.#lastT) {
      this.#lastT = t;
      this.#middle = `,"t":${Math.round(t)},"p":"${PHONE}","m":"`;
    }
    const index = String(i);
    const pad = this.#payloadBytes - this.#head.length - index.length - this.#middle.length - 2;
    return `${this.#head}${index}${this.#middle}${pad > 0 ? (this.#tails[pad] ??= `${'x'.repeat(pad)}"}`) : '"}'}`;
  }
}

// The layout `{"r":"<token>","i":<digits>,"t":<digits>,"p":…"}`. Its head up to the index is the same
// for every body of the run: one substring compare checks it (V8 slices a flat string without
// copying it; in bench runs here that beat both startsWith and a charCodeAt loop over its 28
// characters). The rest is read character by character, which on a 200-byte body is about twice as
// fast as startsWith/endsWith.
const QUOTE = 34; // "
const COLON = 58; // :
const COMMA = 44; // ,
const CLOSE = 125; // }
const LETTER_T = 116;
const LETTER_P = 112;
const ZERO = 48;
const NINE = 57;
/** Digits a safe integer can have and still be read exactly by the digit loop. */
const MAX_DIGITS = 15;

/** True when `body` has `"<letter>":` at `at` (the key and its colon). */
function keyAt(body: string, at: number, letter: number): boolean {
  return body.charCodeAt(at) === QUOTE && body.charCodeAt(at + 1) === letter && body.charCodeAt(at + 2) === QUOTE && body.charCodeAt(at + 3) === COLON;
}

/** Reads bodies back for one run: made once per consumer, with the run's token. */
export class MessageDecoder {
  readonly #runToken: string;
  /** `{"r":"<token>","i":`, as the encoder writes it. */
  readonly #head: string;

  constructor(runToken: string) {
    this.#runToken = runToken;
    this.#head = `{"r":"${runToken}","i":`;
  }

  /**
   * A stamp for a message of this run; FOREIGN for a well-formed message with another token or none
   * (the layout before tokens existed); `undefined` for anything that is not a message at all. Bodies
   * in the encoder's exact layout are read from their head without a JSON parse (the hot path);
   * anything else, foreign bodies included, goes through JSON.parse and a shape check.
   */
  decode(body: string): MessageStamp | typeof FOREIGN | undefined {
    const length = body.length;
    const head = this.#head;
    let at = head.length;
    if (length > at && body.charCodeAt(length - 1) === CLOSE && body.charCodeAt(length - 2) === QUOTE && body.substring(0, at) === head) {
      const iStart = at;
      let i = 0;
      let code = body.charCodeAt(at);
      while (code >= ZERO && code <= NINE) {
        i = i * 10 + (code - ZERO);
        code = body.charCodeAt(++at);
      }
      const iDigits = at - iStart;
      if (iDigits > 0 && iDigits <= MAX_DIGITS && (iDigits === 1 || body.charCodeAt(iStart) !== ZERO) && code === COMMA && keyAt(body, at + 1, LETTER_T)) {
        at += 5;
        const tStart = at;
        let t = 0;
        code = body.charCodeAt(at);
        while (code >= ZERO && code <= NINE) {
          t = t * 10 + (code - ZERO);
          code = body.charCodeAt(++at);
        }
        const tDigits = at - tStart;
        if (tDigits > 0 && tDigits <= MAX_DIGITS && (tDigits === 1 || body.charCodeAt(tStart) !== ZERO) && code === COMMA && keyAt(body, at + 1, LETTER_P)) {
          return { i, t };
        }
      }
    }
    return decodeJson(body, this.#runToken);
  }
}

function decodeJson(body: string, runToken: string): MessageStamp | typeof FOREIGN | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { r, i, t } = parsed as { r?: unknown; i?: unknown; t?: unknown };
  if (!Number.isSafeInteger(i) || (i as number) < 0 || typeof t !== 'number' || !Number.isFinite(t)) {
    return undefined;
  }
  // Shaped like a message: whether it is this run's is the token's say alone.
  if (r !== runToken) return FOREIGN;
  return { i: i as number, t };
}
