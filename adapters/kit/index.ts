// The adapter kit: what every adapter would otherwise repeat, written once. An adapter writes a Driver
// and a definition, and `defineAdapter` makes its registry entry (README: "Adding a broker").

export { defineAdapter } from './adapter.ts';
export { KitBroker, type HandleFacts } from './broker.ts';
export type { AdapterDefinition, Driver, LimitFacts, ServerInfo } from './driver.ts';
export { firstLine, toBrokerError } from './errors.ts';
export { Limits } from './limits.ts';
export { SettingsReader, type EndpointKind } from './settings.ts';
export { backoffMs, sleep, TimeoutError, withTimeout } from './waits.ts';
