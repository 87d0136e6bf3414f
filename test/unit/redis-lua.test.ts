// The Lua scripts under adapters/lua/: each opens with a comment naming every KEYS[n] and ARGV[n] it
// uses, and the loader passes as many keys as that header lists.

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadLua } from '../../adapters/redis-kit.ts';

const dir = new URL('../../adapters/lua/', import.meta.url);
const files = readdirSync(dir).filter((name) => name.endsWith('.lua'));

/** The numbered KEYS[n] and ARGV[n] in `text`, e.g. ['KEYS[1]', 'ARGV[2]']. */
function slots(text: string): Set<string> {
  return new Set([...text.matchAll(/\b(KEYS|ARGV)\[(\d+)\]/g)].map((match) => `${match[1]}[${match[2]}]`));
}

describe('adapters/lua', () => {
  it('holds the scripts of both Redis adapters', () => {
    expect(files).toEqual(expect.arrayContaining(['list-receive.lua', 'list-ack.lua', 'list-nack.lua', 'stream-housekeep.lua', 'stream-nack.lua']));
  });

  it.each(files)('%s opens with a comment listing every KEYS[n] and ARGV[n] it uses', (file) => {
    const text = readFileSync(new URL(file, dir), 'utf8');
    const firstCode = text.search(/^(?!--)/m);
    const header = text.slice(0, firstCode);
    const body = text.slice(firstCode);
    expect(header.length).toBeGreaterThan(0);
    const listed = new Set([...header.matchAll(/^-- (KEYS|ARGV)\[(\d+)/gm)].map((match) => `${match[1]}[${match[2]}]`));
    for (const used of slots(body)) expect(listed, `${file} uses ${used}`).toContain(used);
  });

  it.each(files.filter((file) => /KEYS\[/.test(readFileSync(new URL(file, dir), 'utf8'))))('%s loads with as many keys as its header lists', (file) => {
    const script = loadLua('bbTest', file);
    const text = readFileSync(new URL(file, dir), 'utf8');
    const highest = Math.max(...[...slots(text)].filter((slot) => slot.startsWith('KEYS')).map((slot) => Number(/\d+/.exec(slot)![0])));
    expect(script.numberOfKeys).toBe(highest);
    expect(script.lua).not.toMatch(/^--- @include/m);
  });
});
