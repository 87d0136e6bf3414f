// The message body: the seed's `{p, m, i}` plus the send time, padded to a chosen size.
// `i` is the index the ledger tracks, `t` the (intended) send time in monotonic microseconds.
//
// LIMITATION: `t` is the monotonic clock of this host (src/clock.ts): a body read on another machine
// gives no meaningful latency. Bodies not in the encoder's exact layout fall back to JSON.parse.

export interface MessageStamp {
  /** Index of the message within the run, 0-based. */
  readonly i: number;
  /** Send time (or intended send time under a fixed rate), monotonic µs; whole µs in encoded bodies. */
  readonly t: number;
}

const PHONE = '+5511999999999';

/**
 * Builds bodies of a fixed target size. The hot path does little per message: the part after the
 * index is made once per send time (a whole publish batch shares one), and each padding length once.
 * Send times are written in whole microseconds, so the decoder reads them back without a float parse.
 */
export class MessageEncoder {
  readonly #payloadBytes: number;
  /** `x`-padding plus the closing `"}`, by padding length. */
  readonly #tails: string[] = [];
  #lastT = Number.NaN;
  /** `,"t":…,"p":"…","m":"` for #lastT. */
  #middle = '';

  constructor(payloadBytes: number) {
    this.#payloadBytes = payloadBytes;
  }

  /** `{"i":…,"t":…,"p":"…","m":"xxx…"}`, `payloadBytes` long unless the fields alone are longer. */
  encode(i: number, t: number): string {
    if (t !== this.#lastT) {
      this.#lastT = t;
      this.#middle = `,"t":${Math.round(t)},"p":"${PHONE}","m":"`;
    }
    const index = String(i);
    const pad = this.#payloadBytes - 5 - index.length - this.#middle.length - 2;
    return `{"i":${index}${this.#middle}${pad > 0 ? (this.#tails[pad] ??= `${'x'.repeat(pad)}"}`) : '"}'}`;
  }
}

// Character codes of the layout `{"i":<digits>,"t":<digits>,"p":…"}`, compared one by one: on a
// 200-byte body this is about twice as fast as startsWith/endsWith, and it runs for every delivery.
const OPEN = 123; // {
const QUOTE = 34; // "
const COLON = 58; // :
const COMMA = 44; // ,
const CLOSE = 125; // }
const LETTER_I = 105;
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

/**
 * Reads the index and send time back; `undefined` for anything that is not one of our messages.
 * Bodies in the encoder's exact layout are read digit by digit from their head, without a slice or a
 * JSON parse (the hot path); anything else goes through JSON.parse and a shape check.
 */
export function decodeMessage(body: string): MessageStamp | undefined {
  const length = body.length;
  if (body.charCodeAt(0) === OPEN && keyAt(body, 1, LETTER_I) && body.charCodeAt(length - 1) === CLOSE && body.charCodeAt(length - 2) === QUOTE) {
    let at = 5;
    let i = 0;
    let code = body.charCodeAt(at);
    while (code >= ZERO && code <= NINE) {
      i = i * 10 + (code - ZERO);
      code = body.charCodeAt(++at);
    }
    const iDigits = at - 5;
    if (iDigits > 0 && iDigits <= MAX_DIGITS && (iDigits === 1 || body.charCodeAt(5) !== ZERO) && code === COMMA && keyAt(body, at + 1, LETTER_T)) {
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
  return decodeJson(body);
}

function decodeJson(body: string): MessageStamp | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { i, t } = parsed as { i?: unknown; t?: unknown };
  if (!Number.isSafeInteger(i) || (i as number) < 0 || typeof t !== 'number' || !Number.isFinite(t)) {
    return undefined;
  }
  return { i: i as number, t };
}
