// QUEUE=SQS on the command line as a user meets it: a small run on the embedded endpoint writes a result
// file that records it; an unreachable or wrong endpoint, refused credentials and a queue SQS will not
// create each end in one line naming the cause, exit code 2, within 10 s, and no result file.
//
// LIMITATION: "refused credentials" is played by a small HTTP server answering as SQS does to a bad key
// (the embedded fauxqs and LocalStack accept any key, and real AWS is off limits to tests); every other
// case talks to a real server: the embedded fauxqs, the Redis port, a closed port.

import { createServer as createHttpServer, type Server } from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readResult } from '../../src/report/result-file.ts';
import { runCli } from '../helpers/cli.ts';
import { redisUrl } from '../helpers/redis.ts';
import { freePort } from '../../src/services/children.ts';

let dir: string;
/** HTTP servers this file started, closed in afterAll. */
const servers: Server[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-sqs-cli-'));
});
afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await rm(dir, { recursive: true, force: true });
});

/** QUEUE=SQS with nothing of the caller's AWS set-up leaking in. */
const base = {
  QUEUE: 'SQS',
  SQS_ENDPOINT: undefined,
  CHANNEL_NAME: undefined,
  AWS_PROFILE: undefined,
  AWS_ACCESS_KEY_ID: undefined,
  AWS_SECRET_ACCESS_KEY: undefined,
  AWS_SESSION_TOKEN: undefined,
};

/** Starts an HTTP server on a loopback port answering every request with `handler`; returns its URL. */
async function httpServer(handler: Parameters<typeof createHttpServer>[1]): Promise<string> {
  const server = createHttpServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the test server has no port');
  return `http://127.0.0.1:${address.port}`;
}

function outDir(name: string): string {
  return path.join(dir, `${name}-${Math.random().toString(36).slice(2, 8)}`);
}

describe('QUEUE=SQS brokerbench scenario', () => {
  it('runs 300 messages on the embedded endpoint and records it in the result file', async () => {
    const out = outDir('ok');
    const run = await runCli(['scenario', '300', '--results-dir', out, '--quiet'], base);
    expect(run.stderr).not.toMatch(/Error|^\s+at /m);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/throughput on sqs \(standard\) fauxqs \d+\.\d+\.\d+ at http:\/\/127\.0\.0\.1:\d+\/ \[embedded\]/);
    expect(run.stdout).toMatch(/nothing lost: 300 of 300/);
    const files = (await readdir(out)).filter((name) => name.endsWith('.json'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/-sqs-standard-throughput-300\.json$/);
    const result = await readResult(path.join(out, files[0]!));
    expect(result).toMatchObject({
      status: 'completed',
      broker: { name: 'sqs', mode: 'standard', endpointKind: 'embedded', serverVersion: expect.stringMatching(/^fauxqs /) },
    });
    expect(result.ledger.lost).toBe(0);
    expect(result.latency.endToEnd.count).toBe(300);
    // 300 messages in batches of 10: at least 30 sends, and every request counted.
    expect(result.requests?.byKind['SendMessageBatch']).toBeGreaterThanOrEqual(30);
    expect(result.requests?.total).toBeGreaterThan(0);
  });

  const closedEndpoint = async (): Promise<string> => `http://127.0.0.1:${await freePort('127.0.0.1')}`;
  const redisEndpoint = async (): Promise<string> => `http://127.0.0.1:${new URL(redisUrl()).port || '6379'}`;
  const htmlEndpoint = (): Promise<string> =>
    httpServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html><body><h1>Not Found</h1></body></html>');
    });
  const silentEndpoint = (): Promise<string> => httpServer(() => undefined);
  const refusingEndpoint = (): Promise<string> =>
    httpServer((_req, res) => {
      // What SQS's JSON protocol answers for an unknown access key.
      res.writeHead(403, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-query-error': 'InvalidClientTokenId;Sender' });
      res.end(JSON.stringify({ __type: 'com.amazonaws.sqs#InvalidClientTokenId', message: 'The security token included in the request is invalid.' }));
    });

  const bad: [string, () => Promise<string | undefined>, string[], (endpoint: string | undefined) => RegExp][] = [
    [
      'an endpoint nothing listens on',
      closedEndpoint,
      [],
      (endpoint) => new RegExp(`^brokerbench: sqs open: cannot reach ${endpoint}/ \\(ECONNREFUSED\\); start the endpoint or unset SQS_ENDPOINT`),
    ],
    [
      'an endpoint that is Redis, not SQS',
      redisEndpoint,
      [],
      (endpoint) => new RegExp(`^brokerbench: sqs open: (cannot reach ${endpoint}/ \\(\\w+\\)|${endpoint}/ answered HTTP)`),
    ],
    [
      'an endpoint that answers with an HTML 404 page',
      htmlEndpoint,
      [],
      (endpoint) =>
        new RegExp(`^brokerbench: sqs open: ${endpoint}/ answered HTTP 404 \\(text/html\\), which is not an SQS reply; check that SQS_ENDPOINT`),
    ],
    [
      'an endpoint that accepts and never answers',
      silentEndpoint,
      [],
      (endpoint) => new RegExp(`^brokerbench: sqs open: cannot reach ${endpoint}/ \\(no answer within \\d+ ms\\)`),
    ],
    [
      'an endpoint that refuses the credentials',
      refusingEndpoint,
      [],
      () => /^brokerbench: sqs open: InvalidClientTokenId: The security token included in the request is invalid\.; check the AWS credentials/,
    ],
    [
      'a queue SQS will not create (visibility timeout over its 12 h)',
      async () => undefined,
      ['--visibility-timeout-ms', '50000000'],
      () => /^brokerbench: sqs prepare: queue bb-\w+-brokerbench: .*InvalidAttributeValue: .*VisibilityTimeout.*43200/,
    ],
  ];

  it.each(bad)('refuses %s: one line with the cause, exit 2, within 10 s, no result file', async (_name, endpointOf, args, message) => {
    const endpoint = await endpointOf();
    const out = outDir('bad');
    const run = await runCli(['scenario', '100', ...args, '--results-dir', out], { ...base, SQS_ENDPOINT: endpoint });
    expect(run.code).toBe(2);
    const lines = run.stderr.trim().split('\n');
    // Progress may have named the phase it reached; the error is the one last line, and no stack.
    expect(lines.filter((line) => line.startsWith('brokerbench:'))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(message(endpoint));
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(run.stderr).not.toMatch(/internal error|Deserialization|\$response/);
    expect(run.stdout).toBe('');
    // The rule, tsx start-up included, on a loaded 2-core machine.
    expect(run.elapsedMs).toBeLessThan(10_000);
    const written = await readdir(out).catch(() => []);
    expect(written.filter((name) => name.endsWith('.json'))).toEqual([]);
  });
});
