// Number formatting shared by every printer: rates, latencies (given in µs) and byte sizes.

export function formatRate(perSec: number): string {
  return `${formatCount(Math.round(perSec))}/s`;
}

export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

/** A latency in µs, shown in the unit that keeps 3 significant digits readable. */
export function formatLatency(us: number): string {
  if (us === 0) return '-';
  if (us < 1000) return `${us.toFixed(0)} µs`;
  if (us < 1_000_000) return `${(us / 1000).toPrecision(3)} ms`;
  return `${(us / 1_000_000).toPrecision(3)} s`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

export function formatSeconds(seconds: number): string {
  return `${seconds.toFixed(2)} s`;
}

/**
 * `text` without terminal control characters (C0 but newline and tab, DEL, C1): strings read from
 * result files (broker names, versions, errors, verdicts) are anyone's, and an escape sequence in one
 * must not clear the screen or retitle the terminal of whoever prints it.
 */
export function stripControls(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '');
}

/** A duration to come, to the second: `45s`, `3m 05s`, `1h 02m`. */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
