// Reads an adapter's settings (`options.settings`: strings from the CLI, or typed values from code), each
// with its default; a value that cannot be read ends the open with a BrokerError naming the setting.

import { BrokerError, type BrokerInfo, type BrokerOptions } from '../../src/broker.ts';

export type EndpointKind = BrokerInfo['endpointKind'];

const ENDPOINT_KINDS: readonly EndpointKind[] = ['local', 'embedded', 'docker', 'localstack', 'aws', 'other'];

export class SettingsReader {
  readonly #adapter: string;
  readonly #raw: NonNullable<BrokerOptions['settings']>;

  constructor(adapter: string, raw: BrokerOptions['settings']) {
    this.#adapter = adapter;
    this.#raw = raw ?? {};
  }

  /** The value as text; undefined when unset or empty. */
  string(key: string): string | undefined {
    const value = this.#raw[key];
    return value === undefined || value === '' ? undefined : String(value);
  }

  /** A number of at least `min` (whole with `integer`); undefined when unset or empty. */
  number(key: string, { min = -Infinity, integer = false }: { min?: number; integer?: boolean } = {}): number | undefined {
    const value = this.#raw[key];
    if (value === undefined || value === '') return undefined;
    const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
    if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
      const what = `${integer ? 'a whole number' : 'a number'}${min > -Infinity ? ` of at least ${min}` : ''}`;
      throw this.#refuse(key, what, value);
    }
    return n;
  }

  /** true/false, 1/0 or their text; `fallback` when unset or empty. */
  boolean(key: string, fallback: boolean): boolean {
    const value = this.#raw[key];
    if (value === undefined || value === '') return fallback;
    if (value === true || value === 'true' || value === 1 || value === '1') return true;
    if (value === false || value === 'false' || value === 0 || value === '0') return false;
    throw this.#refuse(key, 'true or false', value);
  }

  /** What describe() reports as `endpointKind` (resolve() passes it); `fallback` when unset. */
  endpointKind(fallback: EndpointKind): EndpointKind {
    const value = this.string('endpointKind');
    if (value === undefined) return fallback;
    const known = ENDPOINT_KINDS.find((kind) => kind === value);
    if (known === undefined) throw this.#refuse('endpointKind', `one of ${ENDPOINT_KINDS.join(', ')}`, value);
    return known;
  }

  #refuse(key: string, what: string, value: unknown): BrokerError {
    return new BrokerError(this.#adapter, 'open', `setting ${key} must be ${what}, got ${String(value)}`);
  }
}
