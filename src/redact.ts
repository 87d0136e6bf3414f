// Secrets never leave the process: every endpoint shown or stored passes through here first.

/** The URL with any user name's password, and any credential-looking query parameter, replaced by `***`. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not a URL: keep nothing that could be a secret after an '@'.
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
  if (parsed.password) parsed.password = '***';
  for (const key of [...parsed.searchParams.keys()]) {
    if (/pass|secret|token|key|signature|credential/i.test(key)) parsed.searchParams.set(key, '***');
  }
  return parsed.toString();
}
