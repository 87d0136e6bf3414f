// The one line a user sees when a Redis connection cannot be opened (or is lost), shared by both Redis adapters:
// an unreachable server, a wrong or missing password, and an untrusted TLS certificate each get the
// fix that applies. The URL is always shown redacted.
//
// LIMITATION: recognises the errors ioredis and Node's TLS stack raise (codes like ECONNREFUSED,
// DEPTH_ZERO_SELF_SIGNED_CERT, replies like WRONGPASS/NOAUTH); anything else is shown as it is.

import { redactUrl } from '../src/redact.ts';
import { firstLine } from './kit/index.ts';

const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Why `url` could not be connected to, and what to do about it, in one line (no secrets). With
 * `timeoutMs`, any timeout (the connect's own or the ready check's command) is told as that limit.
 */
export function explainRedisConnectError(url: string, cause: unknown, timeoutMs?: number): string {
  const where = redactUrl(url);
  const code = (cause as { code?: unknown } | null)?.code;
  const text = firstLine(cause);
  if (/^(WRONGPASS|NOAUTH|ERR invalid password|ERR AUTH)/i.test(text)) {
    return `authentication failed at ${where} (${text.split(' ')[0]}); check the user name and password in REDIS_URL`;
  }
  if (typeof code === 'string' && TLS_TRUST_CODES.has(code)) {
    return `cannot trust the TLS certificate of ${where} (${code}); give its CA with NODE_EXTRA_CA_CERTS=/path/to/ca.pem`;
  }
  if (timeoutMs !== undefined && /timed out/i.test(text)) {
    return `cannot reach ${where} (connect timed out: no answer within ${timeoutMs} ms); start Redis or set REDIS_URL`;
  }
  const reason = typeof code === 'string' ? code : text;
  return `cannot reach ${where} (${reason}); start Redis or set REDIS_URL`;
}

/** An error's first line, with ioredis's words for a connection that is down put in the user's. */
export function describeRedisError(error: unknown): string {
  const text = firstLine(error);
  if (/^(Stream isn't writeable|Connection is closed)/.test(text)) return 'not connected: the server went away (reconnecting with back-off)';
  if (/^Reached the max retries per request limit/.test(text)) {
    return 'the connection dropped with the command in flight: it may or may not have run (reconnecting with back-off)';
  }
  return text;
}
