// docker-compose.yml's `workers` profile, read as Compose reads it (YAML merge keys resolved, ${VAR:-x}
// taken at its default), since no Docker engine runs here: N workers with distinct shard indices of one
// run, on one parts volume, able to reach every broker the registry can share, and a merge that starts
// only when all of them have exited 0; the plain `docker compose up` still starts the brokers alone.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { adapters } from '../../adapters/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

interface Service {
  image?: string;
  build?: string;
  profiles?: string[];
  command?: string[];
  environment?: Record<string, string | null>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: unknown;
}

const document = parseDocument(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true, uniqueKeys: true });
const compose = document.toJS({ maxAliasCount: 100 }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;

/** A value as Compose interpolates it when the variable is unset: `${NAME:-default}` becomes `default`. */
function interpolated(text: string): string {
  return text.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');
}

const inProfile = Object.entries(services).filter(([, service]) => service.profiles?.includes('workers'));
const workers = inProfile.filter(([, service]) => service.command?.[0] === 'worker');
const merge = services['merge'];

describe('docker-compose.yml, workers profile', () => {
  it('parses as YAML, and a plain `docker compose up` starts only the brokers, each with a health check', () => {
    expect(document.errors).toEqual([]);
    const always = Object.entries(services).filter(([, service]) => service.profiles === undefined);
    expect(always.map(([name]) => name)).toEqual(['redis', 'localstack', 'rabbitmq', 'nats', 'postgres']);
    for (const [name, service] of always) expect(service.healthcheck, name).toBeDefined();
    expect(inProfile.map(([name]) => name).sort()).toEqual([...workers.map(([name]) => name), 'merge'].sort());
  });

  it('as many workers as BROKERBENCH_SHARDS says, indices 0 to N-1 once each, one run id and one parts folder', () => {
    expect(workers.length).toBeGreaterThanOrEqual(2);
    const envs = workers.map(([, service]) => service.environment ?? {});
    for (const env of envs) {
      expect(env['BROKERBENCH_SHARDS']).toBe(String(workers.length));
      expect(env['BROKERBENCH_PARTS_DIR']).toBe('/data/parts');
    }
    expect(envs.map((env) => env['JOB_COMPLETION_INDEX']).sort()).toEqual(workers.map((_, index) => String(index)).sort());
    expect(new Set(envs.map((env) => env['BROKERBENCH_RUN_ID'])).size).toBe(1);
    expect(new Set(envs.map((env) => env['QUEUE'])).size).toBe(1);
    expect(interpolated(String(envs[0]!['QUEUE']))).toBe('REDIS');
    // Compose passes a variable listed without a value from the shell, or leaves it unset.
    for (const env of envs) expect(env).toHaveProperty('BROKERBENCH_START_AT', null);
  });

  it('every worker and the merge run the one image built here, on the one declared parts volume', () => {
    expect(compose.volumes).toHaveProperty('parts');
    for (const [name, service] of inProfile) {
      expect(service.build, name).toBe('.');
      expect(service.image, name).toBe(`brokerbench:${(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}`);
      expect(service.volumes, name).toEqual(['parts:/data']);
    }
    for (const [name, service] of workers) expect(interpolated(service.command?.[1] ?? ''), name).toMatch(/^\d+$/);
  });

  const shared = adapters.filter((adapter) => adapter.serverVariable !== undefined && adapter.capabilities(adapter.defaultMode).sharedAcrossProcesses);
  it.each(shared.map((adapter) => [adapter.name, adapter.serverVariable!] as const))(
    '%s: the workers reach its compose service by %s, once it is healthy',
    (_name, variable) => {
      for (const [name, service] of workers) {
        const url = service.environment?.[variable];
        expect(url, `${name} ${variable}`).toMatch(/^[a-z]+:\/\//);
        const host = new URL(String(url)).hostname;
        expect(Object.keys(services), `${name}: ${variable} names ${host}`).toContain(host);
        expect(service.depends_on?.[host], `${name} waits for ${host}`).toEqual({ condition: 'service_healthy' });
      }
    },
  );

  it('the merge starts once every worker exited 0, and merges the same run id the workers wrote', () => {
    expect(merge).toBeDefined();
    expect(Object.keys(merge!.depends_on ?? {}).sort()).toEqual(workers.map(([name]) => name).sort());
    for (const dependency of Object.values(merge!.depends_on ?? {})) expect(dependency).toEqual({ condition: 'service_completed_successfully' });
    const runId = String(workers[0]![1].environment?.['BROKERBENCH_RUN_ID']);
    expect(merge!.command).toEqual(['merge', `/data/parts/${runId}`, '--out', `/data/results/${runId}.json`]);
    expect(interpolated(runId)).toMatch(/^[a-z0-9-]+$/);
  });
});
