import { describe, expect, it } from 'vitest';
import { decodeMessage, MessageEncoder } from '../../src/pipeline/message.ts';

describe('message body', () => {
  it('is padded to the requested size and keeps the seed fields', () => {
    const body = new MessageEncoder(200).encode(123456, 98765.25);
    expect(Buffer.byteLength(body)).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ i: 123456, t: 98765, p: expect.any(String), m: expect.any(String) });
  });

  it('grows past a size too small for its fields rather than cut them', () => {
    const body = new MessageEncoder(10).encode(1, 2);
    expect(decodeMessage(body)).toEqual({ i: 1, t: 2 });
  });

  it('round-trips index and send time, the time to the whole microsecond', () => {
    const encoder = new MessageEncoder(64);
    for (const [i, t] of [[0, 0], [4_999_999, 123_456_789.125], [7, 123_456_789.5], [10, 99_999_999_999_999]] as const) {
      expect(decodeMessage(encoder.encode(i, t))).toEqual({ i, t: Math.round(t) });
    }
  });

  it('keeps each body its own size when the index grows by a digit under one send time', () => {
    const encoder = new MessageEncoder(120);
    for (const i of [9, 10, 99, 100, 99_999, 100_000]) {
      const body = encoder.encode(i, 5_000);
      expect(body).toHaveLength(120);
      expect(decodeMessage(body)).toEqual({ i, t: 5_000 });
    }
  });

  it('reads a fractional or exponent send time written by someone else through the JSON path', () => {
    expect(decodeMessage('{"i":3,"t":12.5,"p":"x","m":""}')).toEqual({ i: 3, t: 12.5 });
    expect(decodeMessage('{"i":3,"t":1e3,"p":"x","m":""}')).toEqual({ i: 3, t: 1000 });
  });

  it('rejects bodies that are not harness messages', () => {
    for (const body of ['', 'not json', '[]', 'null', '{"i":-1,"t":1}', '{"i":1.5,"t":1}', '{"i":1}', '{"i":"1","t":2}']) {
      expect(decodeMessage(body)).toBeUndefined();
    }
  });
});

describe('decodeMessage fast path', () => {
  it('agrees with JSON.parse on bodies in the encoder layout', () => {
    const encoder = new MessageEncoder(120);
    for (let k = 0; k < 200; k++) {
      const i = Math.floor(Math.random() * 1e7);
      const t = Math.random() * 1e12;
      const body = encoder.encode(i, t);
      const parsed = JSON.parse(body) as { i: number; t: number };
      expect(decodeMessage(body)).toEqual({ i: parsed.i, t: parsed.t });
    }
  });

  it('rejects look-alikes whose fields are not numbers', () => {
    for (const body of ['{"i":01,"t":1,"p":"x","m":""}', '{"i":1234567890123456789,"t":1,"p":"x","m":""}', '{"i":abc,"t":1,"p":"x","m":""}', '{"i":,"t":1,"p":"x","m":""}', '{"i":1,"t":,"p":"x","m":""}', '{"i":-3,"t":1,"p":"x","m":""}']) {
      expect(decodeMessage(body)).toBeUndefined();
    }
  });
});
