import { describe, expect, it } from 'vitest';
import { FOREIGN, MessageDecoder, MessageEncoder, newRunToken, RUN_TOKEN_LENGTH } from '../../src/pipeline/message.ts';

const TOKEN = '0123456789abcdef';
const OTHER = 'fedcba9876543210';
const decode = (body: string): ReturnType<MessageDecoder['decode']> => new MessageDecoder(TOKEN).decode(body);

describe('message body', () => {
  it('is padded to the requested size and keeps the seed fields, with the run token', () => {
    const body = new MessageEncoder(200, TOKEN).encode(123456, 98765.25);
    expect(Buffer.byteLength(body)).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ r: TOKEN, i: 123456, t: 98765, p: expect.any(String), m: expect.any(String) });
  });

  it('grows past a size too small for its fields rather than cut them', () => {
    const body = new MessageEncoder(10, TOKEN).encode(1, 2);
    expect(decode(body)).toEqual({ i: 1, t: 2 });
  });

  it('round-trips index and send time, the time to the whole microsecond', () => {
    const encoder = new MessageEncoder(64, TOKEN);
    for (const [i, t] of [[0, 0], [4_999_999, 123_456_789.125], [7, 123_456_789.5], [10, 99_999_999_999_999]] as const) {
      expect(decode(encoder.encode(i, t))).toEqual({ i, t: Math.round(t) });
    }
  });

  it('keeps each body its own size when the index grows by a digit under one send time', () => {
    const encoder = new MessageEncoder(120, TOKEN);
    for (const i of [9, 10, 99, 100, 99_999, 100_000]) {
      const body = encoder.encode(i, 5_000);
      expect(body).toHaveLength(120);
      expect(decode(body)).toEqual({ i, t: 5_000 });
    }
  });

  it('reads a fractional or exponent send time written by someone else through the JSON path', () => {
    expect(decode(`{"r":"${TOKEN}","i":3,"t":12.5,"p":"x","m":""}`)).toEqual({ i: 3, t: 12.5 });
    expect(decode(`{"i":3,"t":1e3,"r":"${TOKEN}"}`)).toEqual({ i: 3, t: 1000 });
  });

  it('rejects bodies that are not harness messages', () => {
    for (const body of ['', 'not json', '[]', 'null', '{"i":-1,"t":1}', '{"i":1.5,"t":1}', '{"i":1}', '{"i":"1","t":2}', `{"r":"${TOKEN}","i":-1,"t":1}`]) {
      expect(decode(body)).toBeUndefined();
    }
  });

  it('refuses a token that is not 16 lower-case hex characters, and makes fresh ones that are', () => {
    for (const token of ['', 'abc', `${TOKEN}0`, 'ABCDEF0123456789', '"}"}"}"}"}"}"}"}']) {
      expect(() => new MessageEncoder(100, token)).toThrow(RangeError);
    }
    const a = newRunToken();
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(a).toHaveLength(RUN_TOKEN_LENGTH);
    expect(newRunToken()).not.toBe(a);
  });
});

describe('run token', () => {
  const ours = new MessageEncoder(200, TOKEN).encode(42, 1_000);

  it('a body of another run is foreign, on the fast path and through JSON', () => {
    expect(decode(new MessageEncoder(200, OTHER).encode(42, 1_000))).toBe(FOREIGN);
    expect(decode(`{"r":"${OTHER}","i":3,"t":12.5}`)).toBe(FOREIGN);
  });

  it('a body in the layout before tokens (no token at all) is foreign', () => {
    expect(decode('{"i":42,"t":1000,"p":"+5511999999999","m":"xxxx"}')).toBe(FOREIGN);
    expect(decode(`{"i":42,"t":1000,"p":"+5511999999999","m":"${'x'.repeat(150)}"}`)).toBe(FOREIGN);
  });

  it('a truncated, extended or mistyped token is foreign', () => {
    for (const token of [TOKEN.slice(0, 15), TOKEN.slice(0, 1), '', `${TOKEN}0`, `${TOKEN.slice(0, 15)}e`, `1${TOKEN.slice(1)}`]) {
      expect(decode(ours.replace(`"r":"${TOKEN}"`, `"r":"${token}"`))).toBe(FOREIGN);
    }
    expect(decode(ours.replace(`"r":"${TOKEN}"`, '"r":12345'))).toBe(FOREIGN);
    expect(decode(ours.replace(`"r":"${TOKEN}"`, '"r":null'))).toBe(FOREIGN);
  });

  it("a token anywhere but in its own field does not make a body the run's", () => {
    expect(decode(`{"i":42,"t":1000,"p":"${TOKEN}","m":"${TOKEN}"}`)).toBe(FOREIGN);
    expect(decode(`{"x":"${TOKEN}","i":42,"t":1000,"p":"x","m":"xx"}`)).toBe(FOREIGN);
  });

  it('a body cut short inside the token is not a message at all', () => {
    expect(decode(ours.slice(0, 14))).toBeUndefined();
  });
});

describe('MessageDecoder fast path', () => {
  it('agrees with JSON.parse on bodies in the encoder layout', () => {
    const encoder = new MessageEncoder(120, TOKEN);
    for (let k = 0; k < 200; k++) {
      const i = Math.floor(Math.random() * 1e7);
      const t = Math.random() * 1e12;
      const body = encoder.encode(i, t);
      const parsed = JSON.parse(body) as { i: number; t: number };
      expect(decode(body)).toEqual({ i: parsed.i, t: parsed.t });
    }
  });

  it('rejects look-alikes whose fields are not numbers', () => {
    const head = `{"r":"${TOKEN}",`;
    for (const rest of ['"i":01,"t":1,"p":"x","m":""}', '"i":1234567890123456789,"t":1,"p":"x","m":""}', '"i":abc,"t":1,"p":"x","m":""}', '"i":,"t":1,"p":"x","m":""}', '"i":1,"t":,"p":"x","m":""}', '"i":-3,"t":1,"p":"x","m":""}']) {
      expect(decode(head + rest)).toBeUndefined();
    }
  });
});
