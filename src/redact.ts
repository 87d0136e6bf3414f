// Secrets never leave the process: every endpoint shown or stored passes through redactUrl first, and
// scrubSecrets (src/secrets.ts) is the last pass over whatever the CLI prints or writes.
// This file imports nothing, so adapters and services can use it without a cycle through the registry.
//
// LIMITATION: redactUrl hides what looks like a secret in a URL (a password, a credential-looking
// query parameter); a secret elsewhere in a URL (a token in its path) is left as it is.

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
