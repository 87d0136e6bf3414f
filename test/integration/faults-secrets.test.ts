// Fault: secrets in the environment. A Redis password in REDIS_URL and AWS keys and a session token
// (really used to sign requests to an SQS endpoint given by URL) never appear in result files, stdout,
// stderr, compare output, the HTML report or error lines. `rediss://` (redis-server's own TLS) and an
// https:// SQS endpoint work, trusting a self-signed CA through NODE_EXTRA_CA_CERTS; without it, the
// failure is one line that says so.

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readResult } from '../../src/report/result-file.ts';
import { startRedisServer, type StartedRedisServer } from '../../src/services/redis-server.ts';
import { startFauxqs, type StartedFauxqs } from '../../src/services/sqs-endpoint.ts';
import { runCli, type CliRun } from '../helpers/cli.ts';
import { filesUnder, leaks, makeCertificate, startTlsFront, type Certificate } from '../helpers/faults.ts';
import { freePort } from '../../src/services/children.ts';

const REDIS_PASSWORD = 'S3cret-redis-pass-7f2a';
const AWS = {
  AWS_ACCESS_KEY_ID: 'AKIAFAULTTEST7Q2WXYZ',
  AWS_SECRET_ACCESS_KEY: 'faultTestSecretKey/9z8y7x6w5v4u3t2s1r0q',
  AWS_SESSION_TOKEN: 'FaultTestSessionToken//////////wEaCXVzLWVhc3QtMSJHMEUCIQ',
};
const SECRETS = [REDIS_PASSWORD, encodeURIComponent(REDIS_PASSWORD), ...Object.values(AWS)];

let dir: string;
let redis: StartedRedisServer;
let fauxqs: StartedFauxqs;
let certificate: Certificate | undefined;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brokerbench-secrets-'));
  redis = await startRedisServer({ args: ['--requirepass', REDIS_PASSWORD] });
  fauxqs = await startFauxqs();
  certificate = makeCertificate();
});
afterAll(async () => {
  await redis?.stop();
  await fauxqs?.stop();
  certificate?.remove();
  await rm(dir, { recursive: true, force: true });
});

const base = { QUEUE: undefined, CHANNEL_NAME: 'secrets', SQS_ENDPOINT: undefined, REDIS_URL: undefined };

/** Everything a run and the reports on it put out, by name. */
async function everythingPrinted(out: string, run: CliRun): Promise<Record<string, string>> {
  const texts: Record<string, string> = { stdout: run.stdout, stderr: run.stderr };
  for (const { file, text } of filesUnder(out)) texts[file] = text;
  const compare = await runCli(['compare', out, '--format', 'md'], {});
  texts['compare stdout'] = compare.stdout;
  texts['compare stderr'] = compare.stderr;
  const html = path.join(out, 'report.html');
  const report = await runCli(['report', out, '--out', html], {});
  texts['report stdout'] = report.stdout;
  texts['report stderr'] = report.stderr;
  texts['report.html'] = await readFile(html, 'utf8').catch(() => '');
  return texts;
}

describe('a Redis password in REDIS_URL', () => {
  it('is used, and never shown: result, stdout, stderr, compare and report hold no trace of it', async () => {
    const out = path.join(dir, 'redis-password');
    const url = `redis://:${REDIS_PASSWORD}@127.0.0.1:${redis.port}`;
    const run = await runCli(['scenario', '500', '--results-dir', out], { ...base, QUEUE: 'REDIS', REDIS_URL: url });
    expect(run.code, run.stderr).toBe(0);
    const [file] = (await readdir(out)).filter((name) => name.endsWith('.json'));
    const result = await readResult(path.join(out, file!));
    expect(result.broker.endpoint).toBe(`redis://:***@127.0.0.1:${redis.port}`);
    const texts = await everythingPrinted(out, run);
    expect(texts['report.html']!.length).toBeGreaterThan(1000); // the report was really made and searched
    expect(leaks(texts, SECRETS)).toEqual([]);
  });

  it.each([
    ['a wrong password', `redis://:wrong-${REDIS_PASSWORD}@127.0.0.1:PORT`, /authentication failed at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ \(WRONGPASS\); check the user name and password in REDIS_URL$/],
    ['no password', 'redis://127.0.0.1:PORT', /authentication failed at redis:\/\/127\.0\.0\.1:\d+ \(NOAUTH\); check the user name and password in REDIS_URL$/],
  ])('with %s: one line, exit 2, no password in it', async (_name, template, message) => {
    const out = path.join(dir, `wrong-${Math.random().toString(36).slice(2)}`);
    const run = await runCli(['scenario', '10', '--results-dir', out], { ...base, QUEUE: 'REDIS', REDIS_URL: template.replace('PORT', String(redis.port)) });
    expect(run.code).toBe(2);
    const lines = run.stderr.trim().split('\n');
    expect(lines.filter((line) => line.startsWith('brokerbench:'))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/^brokerbench: redis-list connect: /);
    expect(lines.at(-1)).toMatch(message);
    expect(leaks({ stdout: run.stdout, stderr: run.stderr }, SECRETS)).toEqual([]);
  });
});

describe('AWS keys and a session token', () => {
  it('sign the requests to an SQS endpoint given by URL, and appear nowhere', async () => {
    const out = path.join(dir, 'aws');
    const run = await runCli(['scenario', '200', '--results-dir', out], {
      ...base,
      QUEUE: 'SQS',
      SQS_ENDPOINT: fauxqs.endpoint,
      ...AWS,
    });
    expect(run.code, run.stderr).toBe(0);
    const texts = await everythingPrinted(out, run);
    expect(leaks(texts, SECRETS)).toEqual([]);
  });

  it('appear in no error line either', async () => {
    const run = await runCli(['scenario', '10', '--results-dir', path.join(dir, 'aws-bad')], {
      ...base,
      QUEUE: 'SQS',
      SQS_ENDPOINT: 'http://127.0.0.1:9',
      ...AWS,
    });
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n').at(-1)).toMatch(/^brokerbench: sqs open: cannot reach http:\/\/127\.0\.0\.1:9\/ \(ECONNREFUSED\)/);
    expect(leaks({ stdout: run.stdout, stderr: run.stderr }, SECRETS)).toEqual([]);
  });
});

describe('TLS', () => {
  it('rediss:// works against redis-server with TLS, trusting its CA through NODE_EXTRA_CA_CERTS', async (context) => {
    if (!certificate) return context.skip('openssl is not on PATH: cannot make a certificate');
    const tlsPort = await freePort('127.0.0.1');
    let server: StartedRedisServer;
    try {
      server = await startRedisServer({
        args: [
          '--tls-port', String(tlsPort),
          '--tls-cert-file', certificate.certFile,
          '--tls-key-file', certificate.keyFile,
          '--tls-auth-clients', 'no',
          '--requirepass', REDIS_PASSWORD,
        ],
      });
    } catch (error) {
      return context.skip(`this redis-server has no TLS (${String(error).slice(0, 120)})`);
    }
    try {
      const url = `rediss://:${REDIS_PASSWORD}@127.0.0.1:${tlsPort}`;
      const out = path.join(dir, 'rediss');
      const run = await runCli(['scenario', '300', '--results-dir', out], {
        ...base,
        QUEUE: 'REDIS',
        REDIS_URL: url,
        NODE_EXTRA_CA_CERTS: certificate.certFile,
      });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(`at rediss://:***@127.0.0.1:${tlsPort}`);
      expect(run.stdout).toMatch(/nothing lost: 300 of 300/);
      expect(leaks({ stdout: run.stdout, stderr: run.stderr, ...Object.fromEntries(filesUnder(out).map((f) => [f.file, f.text])) }, SECRETS)).toEqual([]);

      // Without the CA the certificate is not trusted: one line saying how to trust it.
      const untrusted = await runCli(['scenario', '10', '--results-dir', path.join(dir, 'rediss-untrusted')], {
        ...base,
        QUEUE: 'REDIS',
        REDIS_URL: url,
        NODE_EXTRA_CA_CERTS: undefined,
      });
      expect(untrusted.code).toBe(2);
      expect(untrusted.stderr.trim().split('\n').at(-1)).toMatch(
        /^brokerbench: redis-list connect: cannot trust the TLS certificate of rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+ \(\w+\); give its CA with NODE_EXTRA_CA_CERTS=/,
      );
      expect(leaks({ stderr: untrusted.stderr }, SECRETS)).toEqual([]);
    } finally {
      await server.stop();
    }
  });

  it('an https:// SQS_ENDPOINT works (a TLS front on the embedded fauxqs)', async (context) => {
    if (!certificate) return context.skip('openssl is not on PATH: cannot make a certificate');
    let requests = '';
    const front = await startTlsFront(certificate, fauxqs.port, (bytes) => {
      if (requests.length < 200_000) requests += bytes.toString('latin1');
    });
    try {
      const out = path.join(dir, 'https');
      const run = await runCli(['scenario', '200', '--results-dir', out], {
        ...base,
        QUEUE: 'SQS',
        SQS_ENDPOINT: `https://127.0.0.1:${front.port}`,
        NODE_EXTRA_CA_CERTS: certificate.certFile,
        ...AWS,
      });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(`at https://127.0.0.1:${front.port}`);
      expect(run.stdout).toMatch(/nothing lost: 200 of 200/);
      // The user's keys really signed the requests (they went over TLS), yet nothing the harness wrote shows them.
      expect(requests).toContain(`Credential=${AWS.AWS_ACCESS_KEY_ID}/`);
      expect(requests.toLowerCase()).toContain(`x-amz-security-token: ${AWS.AWS_SESSION_TOKEN.toLowerCase()}`);
      expect(leaks({ stdout: run.stdout, stderr: run.stderr, ...Object.fromEntries(filesUnder(out).map((f) => [f.file, f.text])) }, SECRETS)).toEqual([]);
    } finally {
      await front.close();
    }
  });
});

