// The message body: the seed's `{p, m, i}` plus the send time, padded to a chosen size.
// `i` is the index the ledger tracks, `t` the (intended) send time in monotonic microseconds.

export interface MessageStamp {
  /** Index of the message within the run, 0-based. */
  readonly i: number;
  /** Send time (or intended send time under a fixed rate), monotonic µs. */
  readonly t: number;
}

const PHONE = '+5511999999999';

/** Builds bodies of a fixed target size; the padding is made once, not per message. */
export class MessageEncoder {
  readonly #payloadBytes: number;
  readonly #filler: string;

  constructor(payloadBytes: number) {
    this.#payloadBytes = payloadBytes;
    this.#filler = 'x'.repeat(payloadBytes);
  }

  /** `{"i":…,"t":…,"p":"…","m":"xxx…"}`, `payloadBytes` long unless the fields alone are longer. */
  encode(i: number, t: number): string {
    const head = `{"i":${i},"t":${t},"p":"${PHONE}","m":"`;
    const pad = this.#payloadBytes - head.length - 2;
    return pad > 0 ? `${head}${this.#filler.slice(0, pad)}"}` : `${head}"}`;
  }
}

/**
 * Reads the index and send time back; `undefined` for anything that is not one of our messages.
 * Bodies in the encoder's exact layout are read from their head without a full JSON parse (the hot
 * path); anything else goes through JSON.parse and a shape check.
 */
export function decodeMessage(body: string): MessageStamp | undefined {
  if (body.startsWith('{"i":') && body.endsWith('"}')) {
    const comma = body.indexOf(',"t":', 5);
    const end = comma < 0 ? -1 : body.indexOf(',"p":', comma + 5);
    if (end > 0) {
      const i = Number(body.slice(5, comma));
      const t = Number(body.slice(comma + 5, end));
      if (Number.isSafeInteger(i) && i >= 0 && Number.isFinite(t) && comma > 5 && end > comma + 5) return { i, t };
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
