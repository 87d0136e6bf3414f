// The adapter registry owns every broker-specific fact: no caller outside adapters/ tests an adapter's
// name to learn one, and what the entries declare (secrets, servers, nack limits, test facts) is what
// redact, the scenarios and the test helpers act on.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { adapters, resolveEndpoint } from '../../adapters/index.ts';
import type { BrokerAdapter } from '../../src/broker.ts';
import { DEFAULTS, type RunConfig } from '../../src/config.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';
import { scrubSecrets } from '../../src/secrets.ts';
import { findScenario } from '../../scenarios/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** Where callers live: everything but the adapters and the registry themselves, and the test files (which may pick an adapter to run). */
const CALLER_DIRS = ['src', 'scenarios', 'bench', 'test/helpers'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return full.endsWith('.ts') ? [full] : [];
  });
}

describe('the registry owns the broker-specific facts', () => {
  it('no caller compares anything with an adapter name or alias, nor keeps a broker family', () => {
    const names = adapters.flatMap((adapter) => [adapter.name, ...adapter.aliases]);
    const quoted = names.map((name) => `'${name.replace(/[-]/g, '\\-')}'`).join('|');
    const comparison = new RegExp(`[!=]==\\s*(${quoted})|(${quoted})\\s*[!=]==|\\bfamily\\b`);
    const found = CALLER_DIRS.flatMap((dir) => sourceFiles(path.join(ROOT, dir))).flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((line, k) => (comparison.test(line) ? [`${path.relative(ROOT, file)}:${k + 1}: ${line.trim()}`] : [])),
    );
    expect(found).toEqual([]);
  });

  it('scrubs every secret an entry declares, whole values and URL passwords alike', () => {
    const declared = adapters.flatMap((adapter) => adapter.secretVariables ?? []);
    expect(declared.map((v) => v.name)).toEqual(expect.arrayContaining(['REDIS_URL', 'AWS_SECRET_ACCESS_KEY']));
    for (const variable of declared) {
      const secret = `s3cret-of-${variable.name.toLowerCase()}`;
      const value = variable.part === 'value' ? secret : `redis://bench:${secret}@127.0.0.1:1`;
      expect(scrubSecrets(`failed with ${secret}`, { [variable.name]: value }), variable.name).toBe('failed with ***');
    }
  });

  it('an entry that names a server variable says how to resolve it; one without a server resolves to none', async () => {
    for (const adapter of adapters) {
      if (adapter.serverVariable !== undefined) expect(typeof adapter.resolve, adapter.name).toBe('function');
    }
    const serverless: BrokerAdapter = { ...adapters[0]!, resolve: undefined, serverVariable: undefined } as BrokerAdapter;
    const endpoint = await resolveEndpoint(serverless, {});
    expect(endpoint.url).toBeUndefined();
    expect(endpoint.settings).toEqual({});
    await endpoint.stop();
  });

  it('every entry with a server tells the tests how to list leftovers and where nothing answers', () => {
    const withServer = adapters.filter((a) => a.serverVariable !== undefined);
    expect(withServer.length).toBeGreaterThan(0);
    for (const adapter of withServer) {
      expect(typeof adapter.testing?.leftovers, adapter.name).toBe('function');
      expect(adapter.testing?.unreachableUrl?.(1), adapter.name).toMatch(/^[a-z]+:\/\/127\.0\.0\.1:1$/);
    }
  });
});

describe('each adapter module loads first, on its own', () => {
  // The registry imports every adapter and some callers import the registry: an adapter that reaches
  // it back while loading (through redact, say) finds the adapter list half-built (a ReferenceError).
  const modules = readdirSync(path.join(ROOT, 'adapters')).filter((name) => name.endsWith('.ts'));
  it.each(modules)('adapters/%s', (name) => {
    const load = `await import(${JSON.stringify(path.join(ROOT, 'adapters', name))})`;
    expect(() => execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', load], { cwd: ROOT, stdio: 'pipe', timeout: 30_000 })).not.toThrow();
  }, 40_000);
});

describe('retry-dlq checks retry intervals against the longest nack delay the entry declares', () => {
  const scenario = findScenario('retry-dlq')!;
  function configure(adapter: BrokerAdapter, retryIntervalsMs: number[]): string {
    const config: RunConfig = { ...DEFAULTS, adapter: adapter.name, mode: adapter.defaultMode, scenario: 'retry-dlq', task: NO_TASK, retryIntervalsMs };
    try {
      scenario.configure!(config, adapter.capabilities(adapter.defaultMode));
      return 'accepted';
    } catch (error) {
      return (error as Error).message;
    }
  }
  const byName = (name: string): BrokerAdapter => adapters.find((adapter) => adapter.name === name)!;

  it('takes a retry past SQS DelaySeconds limit, as a nack sets the visibility timeout (up to 12 h)', () => {
    expect(configure(byName('sqs'), [1_000_000])).toBe('accepted');
  });

  it('refuses a retry past a Redis adapter\'s longest delay, naming it', () => {
    expect(configure(byName('redis-stream'), [8 * 24 * 3600 * 1000])).toBe("--retry-intervals 691200 s is over redis-stream's longest delay of 604800 s");
  });
});
