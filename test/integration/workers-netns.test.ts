// Four workers as four hosts: each in a network namespace of its own with its own 10.x address and
// host name (a veth pair to the root namespace, where a throw-away redis-server listens on the root
// side's address; the traffic never leaves this machine), one SIGKILLed mid-run. The merge must
// balance the books exactly and carry the cross-host latency and the clocks' bound, in the result
// and in the report. Needs root and `ip netns`; skipped, saying why, without them.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLatency } from '../../src/format.ts';
import { publishedCount } from '../../src/metrics/ledger.ts';
import { startRedisServer, type StartedRedisServer } from '../../src/services/redis-server.ts';
import { runCli } from '../helpers/cli.ts';
import { allDone, isoIn, partPath, readMerged, startWorkers, testRunId, waitForRecord } from '../helpers/workers.ts';

const SHARDS = 4;
/** Why the namespaces cannot be made here, or undefined when they can. */
function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'pipe' });
    execFileSync('unshare', ['--version'], { stdio: 'pipe' });
  } catch {
    return '`ip netns` (iproute2) or `unshare` (util-linux) is not available';
  }
  return undefined;
}
const skip = unavailable();

// Names carry this test's pid, so two runs side by side never meet; interface names stay under 15 characters.
const tag = String(process.pid % 100_000);
const subnet = `10.${100 + (process.pid % 100)}`;
const namespaces = Array.from({ length: SHARDS }, (_, k) => ({
  name: `bbw${tag}n${k}`,
  rootSide: `bbw${tag}r${k}`,
  inside: `bbw${tag}i${k}`,
  rootAddress: `${subnet}.${k}.1`,
  address: `${subnet}.${k}.2`,
  host: `bbw-host-${k}`,
}));
/** The address the broker listens on: the root side of the first pair, reached by the others through their own. */
const brokerAddress = namespaces[0]!.rootAddress;

const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'pipe' });

let server: StartedRedisServer | undefined;
const root = mkdtempSync(path.join(tmpdir(), 'brokerbench-netns-'));

beforeAll(async () => {
  if (skip) return;
  for (const ns of namespaces) {
    ip('netns', 'add', ns.name);
    ip('link', 'add', ns.rootSide, 'type', 'veth', 'peer', 'name', ns.inside);
    ip('link', 'set', ns.inside, 'netns', ns.name);
    ip('addr', 'add', `${ns.rootAddress}/24`, 'dev', ns.rootSide);
    ip('link', 'set', ns.rootSide, 'up');
    ip('netns', 'exec', ns.name, 'ip', 'addr', 'add', `${ns.address}/24`, 'dev', ns.inside);
    ip('netns', 'exec', ns.name, 'ip', 'link', 'set', ns.inside, 'up');
    ip('netns', 'exec', ns.name, 'ip', 'link', 'set', 'lo', 'up');
    ip('netns', 'exec', ns.name, 'ip', 'route', 'add', 'default', 'via', ns.rootAddress);
  }
  // No password on an address other hosts could reach: protected mode would refuse them, so it is off,
  // and the address is one only these namespaces route to.
  server = await startRedisServer({ args: ['--bind', '127.0.0.1', brokerAddress, '--protected-mode', 'no'] });
}, 30_000);

afterAll(async () => {
  await server?.stop();
  for (const ns of namespaces) {
    // Removing a namespace removes the veth pair with it; the root side is removed too in case it was not moved.
    try {
      ip('netns', 'del', ns.name);
    } catch {
      // not made
    }
    try {
      ip('link', 'del', ns.rootSide);
    } catch {
      // gone with its namespace
    }
  }
  rmSync(root, { recursive: true, force: true });
});

describe.skipIf(skip !== undefined)(`four workers in four network namespaces${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('each reaches the broker from its own address; one killed mid-run; the merge balances and carries cross-host latency with its bound', async () => {
    const runId = testRunId();
    const partsDir = path.join(root, 'parts');
    const url = `redis://${brokerAddress}:${server!.port}`;
    const workers = startWorkers({
      runId,
      partsDir,
      shards: SHARDS,
      args: ['6000', '--rate', '2000', '--batch', '10', '--visibility-timeout-ms', '1000', '--receive-wait-ms', '300'],
      startAt: isoIn(10_000),
      env: { REDIS_URL: url, QUEUE: 'REDIS' },
      // Its own network and its own host name: `ip netns exec` and `unshare --uts` exec, so the pid stays the worker's.
      wrap: (k) => ['ip', 'netns', 'exec', namespaces[k]!.name, 'unshare', '--uts', 'sh', '-c', `hostname ${namespaces[k]!.host} && exec "$@"`, 'worker'],
    });
    const victim = 1;
    const journal = partPath(partsDir, runId, victim, SHARDS, 'journal');
    expect(await waitForRecord(journal, 'D', 45_000)).toBe(true);
    expect(await waitForRecord(journal, 'P', 10_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300 + Math.floor(Math.random() * 400)));
    process.kill(workers[victim]!.child.pid!, 'SIGKILL');
    const runs = await allDone(workers);
    expect(runs[victim]!.signal).toBe('SIGKILL');
    for (const [k, run] of runs.entries()) if (k !== victim) expect(run.code, run.stderr).toBe(0);
    expect(existsSync(partPath(partsDir, runId, victim, SHARDS))).toBe(false);

    // On another host a pid says nothing: the merge takes the dead worker's journal for a live one's until
    // it has been silent for five heartbeats. Wait for that, as anyone merging right after a run would.
    const silentSince = statSync(journal).mtimeMs;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, silentSince + 5_500 - Date.now())));

    const out = path.join(root, `${runId}.json`);
    const merged = await runCli(['merge', path.join(partsDir, runId), '--out', out], {}, 60_000);
    expect(merged.stderr).toBe('');
    expect(merged.code).toBe(0);
    const result = readMerged(out);
    const l = result.ledger;
    expect(result.status).toBe('completed');
    expect(l.completed + l.lost + (l.notSent ?? 0) + l.publishFailed + (l.inDoubt ?? 0)).toBe(l.expected);
    expect(l.lost).toBe(0);
    expect(l.completed).toBe(publishedCount(l));
    expect(l.deliveries).toBe(l.delivered + l.duplicateDeliveries);

    const workersSeen = result.workers!;
    expect(workersSeen.map((w) => w.host)).toEqual(namespaces.map((ns) => ns.host));
    expect(workersSeen.map((w) => w.status)).toEqual(['completed', 'killed', 'completed', 'completed']);
    for (const w of workersSeen) {
      expect(w.clockReference).toBe('redis TIME');
      expect(w.clockUncertaintyUs).toBeGreaterThan(0);
    }
    // Three of four workers' messages are consumed on other hosts: cross-host latency, with the bound its clocks allow.
    const cross = result.latency.crossHost!;
    expect(cross.count).toBeGreaterThan(0);
    expect(result.latency.sameHost!.count).toBeGreaterThan(0);
    const uncertainties = workersSeen.map((w) => w.clockUncertaintyUs!).sort((a, b) => b - a);
    expect(cross.errorBoundUs).toBeCloseTo(uncertainties[0]! + uncertainties[1]!, 6);
    expect(result.scenarioData!.values['crossHostErrorBoundUs']).toBe(Math.round(cross.errorBoundUs!));

    // The report shows the clock table: cross-host percentiles beside their bound.
    const html = path.join(root, 'report.html');
    const report = await runCli(['report', out, '--out', html], {}, 60_000);
    expect(report.code).toBe(0);
    const page = readFileSync(html, 'utf8');
    expect(page).toContain('end-to-end latency by clock');
    expect(page).toContain('cross host');
    expect(page).toContain(`± ${formatLatency(Math.max(1, Math.round(cross.errorBoundUs!)))}`);
  }, 90_000);
});
