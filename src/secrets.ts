// The last line of defence for secrets: scrubSecrets takes every secret this process knows of out of
// what the harness prints or writes (results, summaries, error lines), behind redactUrl where URLs are
// made. Which environment variables hold secrets is the adapter registry's to say.
//
// LIMITATION: scrubSecrets knows only the secrets in this process's environment, in the variables the
// adapter registry declares (AWS keys, session token, URL passwords, a NATS_URL token), and skips values under
// 8 characters; a secret given any other way relies on redactUrl alone.

import { secretVariables } from '../adapters/index.ts';

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
    else for (const secret of urlPasswords(value, variable.part === 'url-userinfo')) found.add(secret);
  }
  return [...found].filter((secret) => secret.length >= MIN_SCRUB_CHARS);
}

/** The password in `url`, as written and URL-decoded; with `userAlone`, a user name without a password too (a token). */
function urlPasswords(url: string, userAlone = false): string[] {
  try {
    const { username, password } = new URL(url);
    const secret = password || (userAlone ? username : '');
    return secret ? [secret, decodeOrSame(secret)] : [];
  } catch {
    // Not a URL (an unencoded reserved character): the password is what stands between the first ':' and the last '@'.
    const userinfo = url.slice(url.indexOf('://') + 3, url.lastIndexOf('@'));
    const colon = userinfo.indexOf(':');
    if (!url.includes('://') || !url.includes('@')) return [];
    if (colon >= 0) return [userinfo.slice(colon + 1)];
    return userAlone ? [userinfo] : [];
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
