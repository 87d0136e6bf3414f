// The environment a result records: which code produced it, down to the commit.

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeEnvironment } from '../../src/environment.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** HEAD of this checkout, or undefined where the tests run outside one. */
function head(): string | undefined {
  try {
    return execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

describe('describeEnvironment', () => {
  it('names the package version and the commit the harness runs from', () => {
    const env = describeEnvironment();
    expect(env.harnessVersion).toMatch(/^\d+\.\d+\.\d+/);
    const commit = head();
    if (commit === undefined) expect(env.harnessCommit).toBeUndefined();
    else expect(env.harnessCommit).toMatch(new RegExp(`^${commit}(-dirty)?$`));
  });
});
