// What one message costs Redis in each Redis case of the bench: commands, bytes in and out, and the
// server's own CPU, read from INFO before and after one case on a throw-away redis-server that
// nothing else talks to. Explains a ratio the rates alone cannot: whether the harness or Redis bounds it.
//
// LIMITATION: the figures include the case's setup and teardown (a few dozen commands, so a rounding
// error at 100,000 messages) and the INFO calls themselves; Redis CPU shares the host with the client
// like every other figure of the bench, so it moves with the host's load.

import { Redis } from 'ioredis';
import { startRedisServer } from '../src/services/redis-server.ts';

export interface RedisCost {
  readonly commandsPerMessage: number;
  readonly inBytesPerMessage: number;
  readonly outBytesPerMessage: number;
  readonly redisCpuUsPerMessage: number;
}

interface Totals {
  readonly commands: number;
  readonly inBytes: number;
  readonly outBytes: number;
  readonly cpuSec: number;
}

async function totals(client: Redis): Promise<Totals> {
  const info = await client.info();
  const field = (name: string): number => Number(new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return {
    commands: field('total_commands_processed'),
    inBytes: field('total_net_input_bytes'),
    outBytes: field('total_net_output_bytes'),
    cpuSec: field('used_cpu_user') + field('used_cpu_sys'),
  };
}

/** Runs `runCase(url)` once per name on a fresh server of its own, and returns each one's cost per message. */
export async function measureRedisCost(
  names: readonly string[],
  messages: number,
  runCase: (name: string, url: string) => Promise<unknown>,
): Promise<Map<string, RedisCost>> {
  const costs = new Map<string, RedisCost>();
  for (const name of names) {
    const server = await startRedisServer();
    const client = new Redis(server.url, { maxRetriesPerRequest: 0 });
    try {
      const before = await totals(client);
      await runCase(name, server.url);
      const after = await totals(client);
      costs.set(name, {
        commandsPerMessage: (after.commands - before.commands) / messages,
        inBytesPerMessage: (after.inBytes - before.inBytes) / messages,
        outBytesPerMessage: (after.outBytes - before.outBytes) / messages,
        redisCpuUsPerMessage: ((after.cpuSec - before.cpuSec) * 1e6) / messages,
      });
    } finally {
      client.disconnect();
      await server.stop();
    }
  }
  return costs;
}

export function formatRedisCost(costs: ReadonlyMap<string, RedisCost>): string {
  const lines = ['  case                commands  bytes in  bytes out  Redis CPU   (per message)'];
  for (const [name, cost] of costs) {
    lines.push(
      `  ${name.padEnd(18)} ${cost.commandsPerMessage.toFixed(3).padStart(9)} ${cost.inBytesPerMessage.toFixed(0).padStart(9)} ` +
        `${cost.outBytesPerMessage.toFixed(0).padStart(10)} ${cost.redisCpuUsPerMessage.toFixed(1).padStart(7)} µs`,
    );
  }
  return lines.join('\n');
}
