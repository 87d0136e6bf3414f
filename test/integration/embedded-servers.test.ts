// The servers the harness starts itself (the embedded SQS emulator, a throw-away redis-server) are
// reachable from this host only, get none of the harness's environment (its secrets), and sit outside
// the terminal's process group: Ctrl-C stops the run, not the server under it.

import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readResult } from '../../src/report/result-file.ts';
import { startRedisServer } from '../../src/services/redis-server.ts';
import { startFauxqs } from '../../src/services/sqs-endpoint.ts';
import { sleep, startCli, waitFor } from '../helpers/faults.ts';

const SECRET = 'brokerbench-test-secret-value-0123456789';

/** Local addresses of the TCP sockets `pid` listens on, from /proc (e.g. `127.0.0.1`, `::1`, `0.0.0.0`). */
function listeningAddresses(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const target = (() => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    })();
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match) inodes.add(match[1]!);
  }
  const addresses: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    const lines = readFileSync(`/proc/net/${table}`, 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      const fields = line.trim().split(/\s+/);
      const [, local, , state, , , , , , inode] = fields;
      if (state !== '0A' || !inodes.has(inode!)) continue; // 0A: LISTEN
      addresses.push(decodeAddress(local!.split(':')[0]!));
    }
  }
  return addresses;
}

/** /proc/net/tcp{,6} addresses are hex, each 32-bit word in host (little-endian) byte order. */
function decodeAddress(hex: string): string {
  const words = hex.match(/.{8}/g)!.map((word) => word.match(/../g)!.reverse().join(''));
  if (words.length === 1) return words[0]!.match(/../g)!.map((byte) => parseInt(byte, 16)).join('.');
  const full = words.join('');
  if (/^0{31}1$/.test(full)) return '::1';
  if (/^0{32}$/.test(full)) return '::';
  if (/^0{20}ffff/.test(full)) return `::ffff:${decodeAddress(full.slice(24).match(/../g)!.reverse().join(''))}`;
  return full;
}

function environmentOf(pid: number): string {
  return readFileSync(`/proc/${pid}/environ`, 'utf8');
}

describe('servers the harness starts', () => {
  const saved = process.env['AWS_SECRET_ACCESS_KEY'];
  beforeAll(() => {
    process.env['AWS_SECRET_ACCESS_KEY'] = SECRET;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env['AWS_SECRET_ACCESS_KEY'];
    else process.env['AWS_SECRET_ACCESS_KEY'] = saved;
  });

  it('the embedded SQS emulator listens on loopback only and gets none of the environment', async () => {
    const server = await startFauxqs();
    try {
      const addresses = listeningAddresses(server.process.pid!);
      expect(addresses.length).toBeGreaterThan(0);
      for (const address of addresses) expect(['127.0.0.1', '::1']).toContain(address);
      expect(environmentOf(server.process.pid!)).not.toContain(SECRET);
      // Its own process group: the terminal's Ctrl-C goes to the harness's group, not to it.
      expect(readFileSync(`/proc/${server.process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]).toBe(String(server.process.pid));
    } finally {
      await server.stop();
    }
  });

  it('a throw-away redis-server listens on loopback only, in protected mode, and gets none of the environment', async () => {
    const server = await startRedisServer({});
    const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
    try {
      const addresses = listeningAddresses(server.process.pid!);
      expect(addresses.length).toBeGreaterThan(0);
      for (const address of addresses) expect(['127.0.0.1', '::1']).toContain(address);
      expect(await client.config('GET', 'protected-mode')).toEqual(['protected-mode', 'yes']);
      expect(environmentOf(server.process.pid!)).not.toContain(SECRET);
      expect(readFileSync(`/proc/${server.process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]).toBe(String(server.process.pid));
    } finally {
      client.disconnect();
      await server.stop();
    }
  });
});

describe('Ctrl-C on a run against the embedded SQS emulator', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-embedded-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stops the run, not the emulator: no publish is refused, the result is written', async () => {
    const cli = startCli(
      ['scenario', '20000', '--rate', '500', '--consumers', '2', '--receive-wait-ms', '200', '--results-dir', dir],
      { QUEUE: 'SQS', SQS_ENDPOINT: undefined },
      60_000,
    );
    await waitFor('the run phase', () => /^run: /m.test(cli.stderr()), 30_000);
    await sleep(1500);
    // The whole process group, as a terminal sends Ctrl-C.
    process.kill(-cli.child.pid!, 'SIGINT');
    const run = await cli.done;
    expect(run.code, run.stderr).toBe(130);
    const files = (await readdir(dir)).filter((name) => name.endsWith('.json'));
    expect(files).toHaveLength(1);
    const result = await readResult(path.join(dir, files[0]!));
    expect(result.status).toBe('interrupted');
    expect(result.errors.join('\n')).not.toMatch(/ECONNREFUSED/);
    expect(result.ledger.publishFailed).toBe(0);
    expect(result.ledger.completed).toBeGreaterThan(0);
  });
});
