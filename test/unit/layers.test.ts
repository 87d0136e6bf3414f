// The house has floors, and imports only run down: the contract and the outcome types on the ground
// floor, then the pipeline's parts, the brokers, the runner, the scenarios, the report and the CLI on
// top. A module that needs something from a floor above it has its type on the wrong floor.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Floors from the ground up; a file may import from its own floor and those below. First match wins. */
const FLOORS: readonly { floor: number; matches: RegExp }[] = [
  { floor: 0, matches: /^src\/(broker|clock|config|errors|flags|format|outcome|scenario|redact|environment|prices)\.ts$|^src\/metrics\// },
  { floor: 0, matches: /^src\/workload\.ts$/ },
  { floor: 1, matches: /^src\/pipeline\// },
  { floor: 2, matches: /^src\/services\/|^adapters\// },
  { floor: 3, matches: /^src\/secrets\.ts$/ },
  { floor: 4, matches: /^src\/runner\// },
  { floor: 5, matches: /^scenarios\// },
  { floor: 6, matches: /^src\/report\// },
  { floor: 7, matches: /^src\/cli(-many|-run|-help|-worker)?\.ts$/ },
];

function floorOf(file: string): number {
  const found = FLOORS.find((entry) => entry.matches.test(file));
  if (!found) throw new Error(`${file} is on no floor: add it to FLOORS`);
  return found.floor;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir)).flatMap((name) => {
    const relative = path.join(dir, name);
    if (statSync(path.join(ROOT, relative)).isDirectory()) return sourceFiles(relative);
    return relative.endsWith('.ts') ? [relative] : [];
  });
}

/** Every relative module a file imports, statically or dynamically, as a path from the root. */
function importsOf(file: string): { target: string; dynamic: boolean }[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const found: { target: string; dynamic: boolean }[] = [];
  for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'|\bimport\(\s*'(\.[^']+)'\s*\)/g)) {
    const spec = match[1] ?? match[2]!;
    found.push({ target: path.normalize(path.join(path.dirname(file), spec)), dynamic: match[2] !== undefined });
  }
  return found;
}

describe('layers', () => {
  const files = [...sourceFiles('src'), ...sourceFiles('adapters'), ...sourceFiles('scenarios')];

  it('every import runs to the same floor or one below', () => {
    const upward = files.flatMap((file) =>
      importsOf(file)
        .filter(({ target }) => floorOf(target) > floorOf(file))
        .map(({ target }) => `${file} (floor ${floorOf(file)}) imports ${target} (floor ${floorOf(target)})`),
    );
    expect(upward).toEqual([]);
  });

  it('no module hides an import of ours in a dynamic import()', () => {
    const hidden = files.flatMap((file) => importsOf(file).filter(({ dynamic }) => dynamic).map(({ target }) => `${file} imports ${target}`));
    expect(hidden).toEqual([]);
  });

  it('finds imports at all (the check above would pass on nothing)', () => {
    expect(importsOf('src/runner/runner.ts').map(({ target }) => target)).toContain('src/outcome.ts');
  });
});
