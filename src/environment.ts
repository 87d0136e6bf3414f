// The machine a run happened on, for result files: enough to tell two hosts' numbers apart.

import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface EnvironmentInfo {
  /** brokerbench's package version. */
  readonly harnessVersion: string;
  /**
   * The git commit brokerbench ran from, with `-dirty` when tracked files differ from it; absent when it
   * is not a git checkout (an installed package) or git is not there. Absent in files written before it.
   */
  readonly harnessCommit?: string;
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
  const commit = harnessCommit();
  return {
    harnessVersion: harnessVersion(),
    ...(commit === undefined ? {} : { harnessCommit: commit }),
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

/** Longest the git look-ups may take: a result file is never held up by a slow or hung git. */
const GIT_TIMEOUT_MS = 2_000;

/** HEAD of the checkout brokerbench runs from, `-dirty` if tracked files changed; undefined when there is none. */
function harnessCommit(): string | undefined {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const git = (...args: string[]): string =>
    execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', timeout: GIT_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    // Only brokerbench's own checkout: installed inside another project's repository, HEAD is theirs.
    if (path.resolve(git('rev-parse', '--show-toplevel')) !== path.resolve(root)) return undefined;
    const head = git('rev-parse', 'HEAD');
    return git('status', '--porcelain', '--untracked-files=no') === '' ? head : `${head}-dirty`;
  } catch {
    return undefined;
  }
}
