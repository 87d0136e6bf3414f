// The machine a run happened on, for result files: enough to tell two hosts' numbers apart.

import os from 'node:os';
import { readFileSync } from 'node:fs';

export interface EnvironmentInfo {
  readonly harnessVersion: string;
  readonly node: string;
  readonly platform: string;
  readonly osRelease: string;
  readonly arch: string;
  readonly cpuModel: string;
  readonly cpuCount: number;
  readonly totalMemoryBytes: number;
}

export function describeEnvironment(): EnvironmentInfo {
  const cpus = os.cpus();
  return {
    harnessVersion: harnessVersion(),
    node: process.version,
    platform: process.platform,
    osRelease: os.release(),
    arch: process.arch,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCount: cpus.length,
    totalMemoryBytes: os.totalmem(),
  };
}

function harnessVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
