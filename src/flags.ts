// Flag values as people write them, read into numbers: a decimal with separators (`1_000`, `1,000`),
// a whole count, a size with a unit (`64mb`), a comma-separated list. Anything else ends in one line
// naming the flag and what it takes (exit code 2, src/errors.ts).

import { UsageError } from './errors.ts';

/** A flag's text; a flag given twice (yargs makes an array) takes its last value, as it would read as not given otherwise. */
export function str(value: unknown): string | undefined {
  const last = Array.isArray(value) ? (value as unknown[]).at(-1) : value;
  return typeof last === 'string' && last.trim() !== '' ? last.trim() : undefined;
}

/** A decimal number as people write one (`10000`, `1_000`, `1,000`, `2.5`, `1e6`); not hex, not blank. */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;

/** A number from a flag, or the default when the flag is absent; one-line error for anything else, blank included. */
export function num(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const text = str(value);
  const digits = text?.replace(/[_,]/g, '');
  if (digits === undefined || !DECIMAL.test(digits)) {
    throw new UsageError(`${name} must be a number, got "${String(Array.isArray(value) ? value.at(-1) : value)}"`);
  }
  const parsed = Number(digits);
  if (!Number.isFinite(parsed)) throw new UsageError(`${name} must be a number, got "${text}"`);
  return parsed;
}

/** A size in bytes: `1048576`, or with a unit as Redis takes it (`512kb`, `64mb`, `1gb`, powers of 1024). */
export function byteSize(name: string, value: unknown, fallback: number): number {
  const text = str(value);
  if (text === undefined) return fallback;
  const match = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(text.replace(/[_,]/g, ''));
  if (!match) throw new UsageError(`${name} must be a size in bytes, e.g. 67108864 or 64mb, got "${text}"`);
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(match[2] ?? 'b').toLowerCase() as 'b' | 'kb' | 'mb' | 'gb'];
  return Math.round(Number(match[1]) * unit);
}

/** A comma-separated list of numbers (`1000,5000`), each times `scale` (seconds to ms: 1000). */
export function numList(name: string, value: unknown, fallback: readonly number[], scale: number): readonly number[] {
  const text = str(value);
  if (text === undefined) return fallback;
  return text.split(',').map((part) => {
    const parsed = Number(part.trim().replace(/_/g, ''));
    if (part.trim() === '' || !Number.isFinite(parsed)) throw new UsageError(`${name} must be numbers separated by commas, got "${text}"`);
    return Math.round(parsed * scale * 1000) / 1000;
  });
}

/** A whole, non-negative number from a flag (`messages`: positive), or the default when the flag is absent. */
export function int(name: string, value: unknown, fallback: number): number {
  const parsed = num(name, value, fallback);
  if (!Number.isSafeInteger(parsed) || parsed < 0 || (name === 'messages' && parsed === 0)) {
    throw new UsageError(`${name} must be a ${name === 'messages' ? 'positive' : 'non-negative'} integer, got "${str(value) ?? String(value)}"`);
  }
  return parsed;
}
