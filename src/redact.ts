// Secrets never leave the process: every endpoint shown or stored passes through redactUrl first, and
// scrubSecrets is the last pass over whatever the CLI prints or writes (results, summaries, errors).
//
// LIMITATION: scrubSecrets knows only the secrets in this process's environment, in the variables the
// adapter registry declares (AWS keys, session token, the REDIS_URL password), and skips values under
// 8 characters; a secret given any other way relies on redactUrl alone.

// The registry imports this file too (adapters redact URLs); secretVariables is only called, never
// read while the modules load, so the cycle is harmless.
import { secretVariables } from '../adapters/index.ts';

/** The URL with any user name's password, and any credential-looking query parameter, replaced by `***`. */
export function redactUrl(url: string): string {
  // Not a URL with a host (`user:pass@host:6379` parses as scheme `user:`): keep nothing that could
  // be a secret before an '@'.
  const bare = (): string => url.replace(/\/\/[^@/]*@/, '//***@').replace(/^[^@/]*@/, '***@');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return bare();
  }
  if (!parsed.host && url.includes('@')) return bare();
  if (parsed.password) parsed.password = '***';
  for (const key of [...parsed.searchParams.keys()]) {
    if (/pass|secret|token|key|signature|credential/i.test(key)) parsed.searchParams.set(key, '***');
  }
  return parsed.toString();
}

/** `text` with every URL in it passed through redactUrl. */
export function redactUrls(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, (url) => redactUrl(url));
}

/** Shorter values are not scrubbed from free text: they would mangle ordinary words (LocalStack's `test`). */
const MIN_SCRUB_CHARS = 8;

/**
 * The secrets this process knows of, from `env`: the values of the variables the registry's adapters
 * declare secret (the AWS keys and session token), and the password (and URL-encoded password) in
 * those that hold a URL (REDIS_URL). Only values of 8 characters or more.
 */
export function knownSecrets(env: Readonly<Record<string, string | undefined>> = process.env): string[] {
  const found = new Set<string>();
  for (const variable of secretVariables()) {
    const value = env[variable.name]?.trim();
    if (!value) continue;
    if (variable.part === 'value') found.add(value);
    else for (const secret of urlPasswords(value)) found.add(secret);
  }
  return [...found].filter((secret) => secret.length >= MIN_SCRUB_CHARS);
}

/** The password in `url`, as written and URL-decoded. */
function urlPasswords(url: string): string[] {
  try {
    const { password } = new URL(url);
    return password ? [password, decodeOrSame(password)] : [];
  } catch {
    // Not a URL (an unencoded reserved character): the password is what stands between the first ':' and the last '@'.
    const userinfo = url.slice(url.indexOf('://') + 3, url.lastIndexOf('@'));
    const colon = userinfo.indexOf(':');
    return url.includes('://') && colon >= 0 ? [userinfo.slice(colon + 1)] : [];
  }
}

/** The URL-decoded value; a `%` that starts no escape (`100%x`) makes decodeURIComponent throw: keep it as is. */
function decodeOrSame(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * `text` with every known secret replaced by `***`: the last line of defence for what the harness
 * prints and writes (results, summaries, error lines), behind redacting URLs where they are made.
 */
export function scrubSecrets(text: string, env: Readonly<Record<string, string | undefined>> = process.env): string {
  let out = text;
  for (const secret of knownSecrets(env)) out = out.split(secret).join('***');
  return out;
}
