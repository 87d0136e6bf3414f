// Helpers for the fault tests (test/integration/faults-*.test.ts): a run configuration, waiting for a
// condition, a TCP "black hole" that accepts and never answers, a self-signed certificate made with
// openssl, a TLS front for a plain TCP server, a search for secrets in whatever a run left behind, and
// the CLI as a child process that a test can send signals to.
//
// LIMITATION: makeCertificate needs the openssl binary on PATH; callers skip with that reason without it.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
export { startCli, type CliProcess } from './cli.ts';
import { DEFAULTS, type RunConfig } from '../../src/config.ts';
import { NO_TASK } from '../../src/pipeline/executor.ts';

/** A throughput run configuration with small, test-sized defaults; `change` wins. */
export function runConfig(change: Partial<RunConfig>): RunConfig {
  return {
    ...DEFAULTS,
    adapter: 'redis-list',
    mode: 'reliable',
    scenario: 'throughput',
    messages: 1000,
    consumers: 2,
    receiveWaitMs: 200,
    timeoutMs: 30_000,
    task: NO_TASK,
    resultsDir: tmpdir(),
    ...change,
  };
}

/** Polls `check` every 20 ms until it is true; throws `what` after `limitMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, limitMs = 15_000): Promise<void> {
  const until = Date.now() + limitMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A loopback TCP server that accepts connections and never says a word: a broker that hangs. */
export interface BlackHole {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: () => number;
  close(): Promise<void>;
}

export async function startBlackHole(): Promise<BlackHole> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.resume(); // read and drop whatever comes
  });
  const port = await listen(server);
  return {
    port,
    accepted: () => accepted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A loopback front door to a real server that holds every new connection for `delayMs` before it is
 * piped through: connecting is slow by construction, whatever the machine's speed.
 */
export async function startSlowDoor(target: { host: string; port: number }, delayMs: number): Promise<BlackHole> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.pause();
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    const timer = setTimeout(() => {
      const upstream = createConnection(target.port, target.host);
      sockets.add(upstream);
      upstream.on('error', () => socket.destroy());
      upstream.on('close', () => {
        sockets.delete(upstream);
        socket.destroy();
      });
      socket.on('close', () => upstream.destroy());
      socket.pipe(upstream).pipe(socket);
      socket.resume();
    }, delayMs);
    socket.on('close', () => clearTimeout(timer));
  });
  const port = await listen(server);
  return {
    port,
    accepted: () => accepted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A self-signed certificate for 127.0.0.1 and localhost, made with openssl in a temporary folder. */
export interface Certificate {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  remove(): void;
}

/** Undefined when openssl is not on PATH. */
export function makeCertificate(): Certificate | undefined {
  const dir = mkdtempSync(path.join(tmpdir(), 'brokerbench-tls-'));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout', keyFile, '-out', certFile,
      ],
      { stdio: 'ignore', timeout: 30_000 },
    );
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return { dir, certFile, keyFile, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A TLS listener on a free loopback port that forwards every connection, decrypted, to 127.0.0.1:`targetPort`.
 * `sniff` sees the decrypted bytes the client sent, e.g. to check which credentials signed a request.
 */
export async function startTlsFront(
  certificate: Certificate,
  targetPort: number,
  sniff?: (clientBytes: Buffer) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTlsServer(
    { cert: readFileSync(certificate.certFile), key: readFileSync(certificate.keyFile) },
    (clear) => {
      const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
      sockets.add(clear).add(upstream);
      const end = (): void => {
        clear.destroy();
        upstream.destroy();
      };
      clear.on('error', end).on('close', end);
      if (sniff) clear.on('data', sniff);
      upstream.on('error', end).on('close', end);
      clear.pipe(upstream).pipe(clear);
    },
  );
  const port = await listen(server);
  return {
    port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Every file under `dir` (recursively) with its text, for searching what a run wrote. */
export function filesUnder(dir: string): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir, { recursive: true }) as string[];
  } catch {
    return out;
  }
  for (const entry of entries) {
    const file = path.join(dir, entry);
    try {
      out.push({ file, text: readFileSync(file, 'utf8') });
    } catch {
      // a folder
    }
  }
  return out;
}

/** The places among `texts` (name -> text) where any of `secrets` occurs; empty when none does. */
export function leaks(texts: Record<string, string>, secrets: readonly string[]): string[] {
  const found: string[] = [];
  for (const [name, text] of Object.entries(texts)) {
    for (const secret of secrets) if (text.includes(secret)) found.push(`${name} contains "${secret}"`);
  }
  return found;
}

/** Listens on a free loopback port; resolves with the port. */
export function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });
}

