// Starts the workers of a run spread over several, as an engine would: one `brokerbench worker` process
// per shard, told its place through the environment a Kubernetes Indexed Job gives (JOB_COMPLETION_INDEX)
// and BROKERBENCH_*; and reads what they leave.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ResultFile } from '../../src/report/result-file.ts';
import { startProcess, type CliProcess, type CliRun } from './cli.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** A fresh run id for a test: unique per process and call. */
export function testRunId(): string {
  return `t${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** An ISO-8601 instant `ms` from now, to the millisecond. */
export function isoIn(ms: number): string {
  return new Date(Date.now() + ms).toISOString();
}

export interface WorkerStart {
  readonly runId: string;
  readonly partsDir: string;
  readonly shards: number;
  /** Flags every worker gets (the message count first). */
  readonly args: readonly string[];
  readonly startAt?: string;
  /** Added to every worker's environment. */
  readonly env?: Record<string, string | undefined>;
  /** Runs the command of worker `shard` through another program (e.g. `ip netns exec NAME`); default none. */
  readonly wrap?: (shard: number) => readonly string[];
  readonly timeoutMs?: number;
}

/** Starts every worker of a run; each leads its own process group, killed with SIGKILL after the timeout. */
export function startWorkers(start: WorkerStart): CliProcess[] {
  return Array.from({ length: start.shards }, (_, shard) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      JOB_COMPLETION_INDEX: String(shard),
      BROKERBENCH_SHARDS: String(start.shards),
      BROKERBENCH_RUN_ID: start.runId,
      BROKERBENCH_PARTS_DIR: start.partsDir,
      ...(start.startAt === undefined ? {} : { BROKERBENCH_START_AT: start.startAt }),
    };
    for (const [key, value] of Object.entries(start.env ?? {})) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
    const command = [process.execPath, '--import', TSX_LOADER, path.join(ROOT, 'src', 'cli.ts'), 'worker', ...start.args, '--quiet'];
    const [program, ...args] = [...(start.wrap?.(shard) ?? []), ...command];
    return startProcess(program!, args, env, start.timeoutMs ?? 80_000);
  });
}

/** Waits until `file` exists and holds a line starting with `record` (a journal's record kind), or `timeoutMs` passes. */
export async function waitForRecord(file: string, record: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(file) && readFileSync(file, 'utf8').split('\n').some((line) => line.startsWith(`${record} `))) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

/** The merged result `merge` wrote to `file`. */
export function readMerged(file: string): ResultFile {
  return JSON.parse(readFileSync(file, 'utf8')) as ResultFile;
}

/** Every worker's run, ended. */
export function allDone(workers: readonly CliProcess[]): Promise<CliRun[]> {
  return Promise.all(workers.map((worker) => worker.done));
}

export const partPath = (dir: string, runId: string, shard: number, shards: number, ext: 'json' | 'journal' = 'json'): string =>
  path.join(dir, runId, `part-${shard}-of-${shards}.${ext}`);
