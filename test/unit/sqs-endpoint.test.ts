// Where SQS comes from: the embedded fauxqs child, an external URL (identified by what it answers),
// or real AWS, which needs a region.

import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { resolveSqs, startFauxqs } from '../../src/services/sqs-endpoint.ts';

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

async function health(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1_000) });
    return response.ok;
  } catch {
    return false;
  }
}

/** A tiny HTTP server answering one path with JSON, to stand in for another endpoint's identity check. */
async function serveJson(path: string, body: unknown): Promise<string> {
  const server: Server = createServer((req, res) => {
    if (req.url === path) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
}

describe('resolveSqs', () => {
  it('starts the embedded fauxqs when SQS_ENDPOINT is unset, and stop() ends it', async () => {
    const sqs = await resolveSqs({});
    cleanups.push(() => sqs.stop());
    expect(sqs).toMatchObject({ kind: 'embedded', version: 'fauxqs 1.9.2', region: 'us-east-1' });
    expect(sqs.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await health(sqs.endpoint!)).toBe(true);
    await sqs.stop();
    await sqs.stop();
    expect(await health(sqs.endpoint!)).toBe(false);
  });

  it('startFauxqs: the child process has exited once stop() resolves', async () => {
    const server = await startFauxqs({ region: 'eu-west-1' });
    cleanups.push(() => server.stop());
    expect(server.process.exitCode).toBeNull();
    await server.stop();
    expect(server.process.exitCode !== null || server.process.signalCode !== null).toBe(true);
  });

  it('uses AWS_REGION for the embedded endpoint too', async () => {
    const sqs = await resolveSqs({ SQS_ENDPOINT: '', AWS_REGION: 'eu-central-1' });
    cleanups.push(() => sqs.stop());
    expect(sqs).toMatchObject({ kind: 'embedded', region: 'eu-central-1' });
  });

  it('SQS_ENDPOINT=aws needs AWS_REGION', async () => {
    const missing = resolveSqs({ SQS_ENDPOINT: 'aws' });
    await expect(missing).rejects.toBeInstanceOf(UsageError);
    await expect(missing).rejects.toThrow('SQS_ENDPOINT=aws needs AWS_REGION: set it, e.g. AWS_REGION=eu-west-1');
    expect(await resolveSqs({ SQS_ENDPOINT: 'aws', AWS_REGION: 'eu-west-1' })).toMatchObject({
      endpoint: undefined,
      kind: 'aws',
      version: 'aws',
      region: 'eu-west-1',
    });
  });

  it('rejects an SQS_ENDPOINT that is not an http(s) URL', async () => {
    await expect(resolveSqs({ SQS_ENDPOINT: 'localhost:4566' })).rejects.toThrow(UsageError);
    await expect(resolveSqs({ SQS_ENDPOINT: 'not a url' })).rejects.toThrow(/is not an http\(s\) URL/);
    // A password in it is not repeated back.
    await expect(resolveSqs({ SQS_ENDPOINT: 'ftp://user:hunter2@127.0.0.1:2121' })).rejects.toThrow(/^SQS_ENDPOINT "ftp:\/\/user:\*\*\*@127\.0\.0\.1:2121\/" is not/);
  });

  it('identifies LocalStack by its health endpoint', async () => {
    const url = await serveJson('/_localstack/health', { services: { sqs: 'running' }, edition: 'community', version: '4.0.3' });
    expect(await resolveSqs({ SQS_ENDPOINT: url })).toMatchObject({ endpoint: url, kind: 'localstack', version: 'localstack 4.0.3' });
  });

  it('calls an external fauxqs "other", and anything unknown "other"', async () => {
    const sqs = await resolveSqs({});
    cleanups.push(() => sqs.stop());
    expect(await resolveSqs({ SQS_ENDPOINT: `${sqs.endpoint}/` })).toMatchObject({
      endpoint: sqs.endpoint,
      kind: 'other',
      version: 'fauxqs (external)',
    });
    const unknown = await serveJson('/nothing', {});
    expect(await resolveSqs({ SQS_ENDPOINT: unknown })).toMatchObject({ kind: 'other', version: 'unknown' });
  });
});
