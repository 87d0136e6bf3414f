// Where SQS comes from: SQS_ENDPOINT=aws (real AWS), SQS_ENDPOINT=<url> (LocalStack or any emulator),
// else the embedded emulator: fauxqs (node_modules/fauxqs) started as a child of this process. fauxqs
// serves SNS on the same port, which fan-out on SQS publishes through (adapters/sqs-topics.ts).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UsageError } from '../errors.ts';
import { redactUrl } from '../redact.ts';
import { freePort, killOnExit, lastLine } from './children.ts';

/** An SQS to talk to, and how to let go of it. */
export interface SqsEndpoint {
  /** Endpoint URL, e.g. `http://127.0.0.1:43127`; `undefined` = the AWS default for `region`. */
  endpoint: string | undefined;
  /** `embedded`: fauxqs started here; `localstack`; `aws`: the real service; `other`: any other URL. */
  kind: 'embedded' | 'localstack' | 'aws' | 'other';
  /** What answers, e.g. `fauxqs 1.9.2`, `localstack 4.0.3`, `aws`, `unknown`. */
  version: string;
  region: string;
  /** Stops what this process started; a no-op for endpoints it did not start. Calling it twice is harmless. */
  stop(): Promise<void>;
}

/** A fauxqs child started by `startFauxqs`. */
export interface StartedFauxqs {
  endpoint: string;
  port: number;
  version: string;
  stop(): Promise<void>;
  process: ChildProcess;
}

const LOOPBACK = '127.0.0.1';
const DEFAULT_REGION = 'us-east-1';
/** How long a started fauxqs gets to answer its health check. */
const START_TIMEOUT_MS = 10_000;
/** How long a stopped fauxqs gets to exit on SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 3_000;
/** How long an external endpoint gets to say what it is. */
const PROBE_TIMEOUT_MS = 1_000;
/** Start attempts: a port found free can be taken before the child binds it. */
const START_ATTEMPTS = 3;
const LOCALSTACK_PORT = 4566;

/**
 * SQS_ENDPOINT unset or empty -> start fauxqs on a free loopback port (`embedded`); stop() kills it.
 * SQS_ENDPOINT=<url> -> use it: `localstack` if it says so on /_localstack/health or listens on 4566
 * (and is not an external fauxqs), else `other`. SQS_ENDPOINT=aws -> the real service in AWS_REGION
 * (required) with the SDK's default credential chain. Throws a `UsageError` naming the fix.
 */
export async function resolveSqs(env: { SQS_ENDPOINT?: string | undefined; AWS_REGION?: string | undefined }): Promise<SqsEndpoint> {
  const noop = async (): Promise<void> => {};
  const setting = env.SQS_ENDPOINT?.trim() ?? '';
  const region = env.AWS_REGION?.trim() || undefined;
  if (setting.toLowerCase() === 'aws') {
    if (region === undefined) {
      throw new UsageError('SQS_ENDPOINT=aws needs AWS_REGION: set it, e.g. AWS_REGION=eu-west-1');
    }
    return { endpoint: undefined, kind: 'aws', version: 'aws', region, stop: noop };
  }
  if (setting !== '') {
    let url: URL;
    try {
      url = new URL(setting);
    } catch {
      url = new URL('invalid:');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UsageError(
        `SQS_ENDPOINT "${setting.includes('@') ? redactUrl(setting) : setting}" is not an http(s) URL: use e.g. http://localhost:4566, "aws", or unset it for the embedded endpoint`,
      );
    }
    const endpoint = setting.replace(/\/+$/, '');
    const { kind, version } = await identify(endpoint, url);
    return { endpoint, kind, version, region: region ?? DEFAULT_REGION, stop: noop };
  }
  const server = await startFauxqs({ region: region ?? DEFAULT_REGION });
  return { endpoint: server.endpoint, kind: 'embedded', version: server.version, region: region ?? DEFAULT_REGION, stop: server.stop };
}

/**
 * Starts fauxqs (its bin, dist/cli.js, configured through FAUXQS_* variables) as a child process on a
 * free loopback port (or on `port`, e.g. to restart one in place), with request logging off. Resolves
 * once GET /health answers, within ~10 s. The child also exits when this process dies, even by
 * SIGKILL: it watches its stdin pipe.
 */
export async function startFauxqs(options: { region?: string; port?: number } = {}): Promise<StartedFauxqs> {
  const root = findFauxqsRoot();
  if (root === undefined) {
    throw new UsageError(
      'cannot start the embedded SQS endpoint: the npm package fauxqs is not installed; run `npm install` or set SQS_ENDPOINT=http://localhost:4566',
    );
  }
  const version = `fauxqs ${readVersion(root)}`;
  let lastError = '';
  const attempts = options.port === undefined ? START_ATTEMPTS : 1;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = options.port ?? (await freePort(LOOPBACK));
    const started = await startOnce(root, port, options.region ?? DEFAULT_REGION);
    if (started.ok) return { ...started.server, version };
    lastError = started.reason;
  }
  throw new UsageError(
    `cannot start the embedded SQS endpoint (${version}): ${lastError}; set SQS_ENDPOINT=http://localhost:4566 to use another one`,
  );
}

// The child runs fauxqs's own bin after arranging to exit when its stdin closes (the parent is gone).
// fauxqs 1.9.2 listens on 0.0.0.0 with no option to change it (2.x has one but needs Node 22.5), and it
// accepts any credentials: every listen of the child is confined to loopback before the bin loads, so
// no other host can reach the run's queues.
const WATCHDOG = [
  "import net from 'node:net';",
  'const listen = net.Server.prototype.listen;',
  'net.Server.prototype.listen = function (...args) {',
  "  if (typeof args[0] === 'object' && args[0] !== null && 'port' in args[0]) args[0] = { ...args[0], host: '127.0.0.1' };",
  "  else if (typeof args[0] === 'number') args.splice(1, typeof args[1] === 'string' ? 1 : 0, '127.0.0.1');",
  '  return listen.apply(this, args);',
  '};',
  "process.stdin.on('end', () => process.exit(0));",
  "process.stdin.on('error', () => process.exit(0));",
  'process.stdin.resume();',
  'await import(process.env.BROKERBENCH_FAUXQS_BIN);',
].join('\n');

type StartResult = { ok: true; server: Omit<StartedFauxqs, 'version'> } | { ok: false; reason: string };

async function startOnce(root: string, port: number, region: string): Promise<StartResult> {
  const bin = join(root, 'dist', 'cli.js');
  // What fauxqs needs and nothing else: never the harness's secrets (AWS keys, REDIS_URL passwords).
  // Without FAUXQS_HOST, queue URLs carry the host the client used (127.0.0.1:port), as wanted.
  const childEnv: NodeJS.ProcessEnv = {
    FAUXQS_PORT: String(port),
    FAUXQS_LOGGER: 'false',
    FAUXQS_DEFAULT_REGION: region,
    BROKERBENCH_FAUXQS_BIN: pathToFileURL(bin).href,
  };
  // A process group of its own: Ctrl-C in the terminal reaches the harness, which stops the emulator
  // once the result is written, instead of the emulator dying under the run.
  const child = spawn(process.execPath, ['--input-type=module', '-e', WATCHDOG], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: childEnv,
    detached: true,
  });
  const forget = killOnExit(child);
  // The pipes must not keep this process alive; when it exits, stdin closes and the child follows.
  child.unref();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();

  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-2_000);
  });
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (error) => {
      spawnError = error;
      resolve();
    });
  });
  void exited.then(forget);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null && spawnError === undefined) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      await exited;
    })();
    return stopping;
  };

  const endpoint = `http://${LOOPBACK}:${port}`;
  const startedAt = Date.now();
  for (;;) {
    if (spawnError !== undefined || child.exitCode !== null || child.signalCode !== null) {
      await stop();
      return { ok: false, reason: `fauxqs exited during start on port ${port}: ${spawnError?.message ?? lastLine(log)}` };
    }
    const health = await getJson(`${endpoint}/health`, 500);
    if (isRecord(health) && health['status'] === 'ok') break;
    if (Date.now() - startedAt > START_TIMEOUT_MS) {
      await stop();
      return { ok: false, reason: `fauxqs did not answer GET /health on port ${port} within ${START_TIMEOUT_MS} ms: ${lastLine(log)}` };
    }
    await sleep(25);
  }
  return { ok: true, server: { endpoint, port, stop, process: child } };
}

/** Says what an external endpoint is, from what it answers. Never throws. */
async function identify(endpoint: string, url: URL): Promise<{ kind: SqsEndpoint['kind']; version: string }> {
  // Both probes at once: an endpoint that never answers costs one probe timeout, not two.
  const [localstack, fauxqs] = await Promise.all([
    getJson(`${endpoint}/_localstack/health`, PROBE_TIMEOUT_MS),
    getJson(`${endpoint}/_fauxqs/queues`, PROBE_TIMEOUT_MS),
  ]);
  if (isRecord(localstack) && ('services' in localstack || 'edition' in localstack)) {
    const version = typeof localstack['version'] === 'string' ? localstack['version'] : 'unknown';
    return { kind: 'localstack', version: `localstack ${version}` };
  }
  // A fauxqs someone else runs (e.g. its Docker image on 4566) is not LocalStack.
  if (Array.isArray(fauxqs)) {
    return { kind: 'other', version: 'fauxqs (external)' };
  }
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return { kind: port === LOCALSTACK_PORT ? 'localstack' : 'other', version: 'unknown' };
}

/** GET a URL and parse its JSON body; `undefined` on any failure or after timeoutMs. No keep-alive. */
function getJson(url: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve) => {
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    let body = '';
    const req = request(url, { method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        if (body.length > 100_000) req.destroy();
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve(undefined);
        try {
          resolve(JSON.parse(body));
        } catch {
          resolve(undefined);
        }
      });
      res.on('error', () => resolve(undefined));
    });
    const timer = setTimeout(() => req.destroy(), timeoutMs);
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.on('close', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    req.end();
  });
}

/** node_modules/fauxqs, looked up from this file upwards (the package exports no package.json). */
function findFauxqsRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'node_modules', 'fauxqs');
    if (existsSync(join(candidate, 'dist', 'cli.js'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function readVersion(root: string): string {
  try {
    const parsed: unknown = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    return isRecord(parsed) && typeof parsed['version'] === 'string' ? parsed['version'] : 'unknown';
  } catch {
    return 'unknown';
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
