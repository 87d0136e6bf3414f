// Makes an adapter's definition its registry entry: modes and capabilities from one table, the mode,
// namespace and command timeout checked before connecting, and every handle wrapped by the kit.

import { BrokerError, type BrokerAdapter, type BrokerOptions } from '../../src/broker.ts';
import { KitBroker, type HandleFacts } from './broker.ts';
import type { AdapterDefinition } from './driver.ts';
import { toBrokerError } from './errors.ts';
import { Limits } from './limits.ts';

export function defineAdapter(definition: AdapterDefinition): BrokerAdapter {
  const { modes: capabilitiesByMode, limits, connect, ...entry } = definition;
  const { name } = entry;
  const modes = Object.keys(capabilitiesByMode);
  const facts = new Map<string, HandleFacts>(
    modes.map((mode) => {
      const capabilities = capabilitiesByMode[mode]!;
      return [mode, { adapter: name, mode, capabilities, limits: new Limits(name, mode, capabilities, limits) }];
    }),
  );
  if (!facts.has(definition.defaultMode)) throw new Error(`${name}: defaultMode ${definition.defaultMode} is not one of its modes`);

  /** The facts of `mode` (any case), or a BrokerError naming the modes there are. */
  function factsOf(mode: string, operation: string): HandleFacts {
    const found = facts.get(mode.toLowerCase());
    if (found === undefined) throw new BrokerError(name, operation, `unknown mode "${mode}": use ${orList(modes)}`);
    return found;
  }

  return {
    ...entry,
    modes,
    capabilities: (mode: string) => factsOf(mode, 'capabilities').capabilities,
    async open(options: BrokerOptions) {
      const handle = factsOf(options.mode ?? definition.defaultMode, 'open');
      if (!options.namespace) throw new BrokerError(name, 'open', 'the namespace is empty');
      if (!(options.commandTimeoutMs > 0)) {
        throw new BrokerError(name, 'open', `commandTimeoutMs must be a number of ms over 0, got ${options.commandTimeoutMs}`);
      }
      try {
        return new KitBroker(handle, await connect(options, handle.mode));
      } catch (error) {
        throw toBrokerError(name, 'open', error);
      }
    },
  };
}

/** `a`, `a or b`, `a, b or c`. */
function orList(words: readonly string[]): string {
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} or ${words.at(-1)}`;
}
