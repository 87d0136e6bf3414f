// The worker image (Dockerfile), checked without a Docker engine: it copies every file the program
// loads, from bin/brokerbench.js down, and installs without dev dependencies only what those files
// import, so an import of a dev dependency or of a folder the image leaves out fails here, not in a pod.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const instructions = dockerfile.split('\n').filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };

/** Where the program starts: the launcher, the CLI it runs, and the script of consumer child processes. */
const ENTRY_POINTS = ['bin/brokerbench.js', 'src/cli.ts', 'src/runner/consumer-process.ts'];

/** Every module a file loads: relative imports as paths from the root, packages by name; type-only imports left out. */
function loads(file: string): { files: string[]; packages: string[] } {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const specifiers: string[] = [];
  const statement = /(?:^|\n)\s*(?:import|export)(\s+type\b)?[^;]*?\bfrom\s+'([^']+)'|(?:^|\n)\s*import\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)|\bresolve\(\s*'([^']+)'\s*\)/g;
  for (const match of text.matchAll(statement)) {
    if (match[1] !== undefined) continue;
    specifiers.push((match[2] ?? match[3] ?? match[4] ?? match[5])!);
  }
  const files = specifiers.filter((s) => s.startsWith('.')).map((s) => path.normalize(path.join(path.dirname(file), s)));
  const packages = specifiers
    .filter((s) => !s.startsWith('.') && !s.startsWith('node:'))
    .map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!));
  return { files, packages };
}

function closure(): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = [...ENTRY_POINTS];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const found = loads(file);
    for (const name of found.packages) packages.add(name);
    queue.push(...found.files.filter((f) => /\.(ts|js)$/.test(f)));
  }
  return { files, packages };
}

describe('the worker image', () => {
  const copied = instructions.filter((line) => line.startsWith('COPY ')).flatMap((line) => line.split(/\s+/).slice(1, -1));

  it('is node:20-slim, installs without dev dependencies and runs as a numeric non-root user', () => {
    expect(instructions[0]).toBe('FROM node:20-slim');
    expect(instructions).toContain('RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force');
    expect(instructions.filter((line) => line.startsWith('USER ')).at(-1)).toBe('USER 1000:1000');
    expect(instructions.at(-2)).toBe('ENTRYPOINT ["node", "bin/brokerbench.js"]');
    // --omit=dev holds only because the sources run under tsx at run time.
    expect(pkg.dependencies).toHaveProperty('tsx');
  });

  it('copies every file the program loads, and what those files read beside them', () => {
    const { files } = closure();
    expect(files.size).toBeGreaterThan(50);
    expect(files).toContain('adapters/sqs-driver.ts');
    const missing = [...files].filter((file) => !copied.some((source) => file === source || file.startsWith(`${source}/`)));
    expect(missing).toEqual([]);
    // Read at run time rather than imported: the Redis scripts, and package.json for the version.
    expect(copied).toEqual(expect.arrayContaining(['adapters', 'package.json']));
  });

  it('every package the program loads is a runtime dependency, so npm ci --omit=dev installs it', () => {
    const { packages } = closure();
    expect(packages).toContain('ioredis');
    expect(packages).toContain('tsx');
    const notInstalled = [...packages].filter((name) => !(name in pkg.dependencies));
    expect(notInstalled).toEqual([]);
  });

  it('.dockerignore keeps .env out of the build context and nothing the image copies', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
    expect(ignored).toContain('.env');
    for (const source of copied) expect(ignored, source).not.toContain(source);
  });
});
