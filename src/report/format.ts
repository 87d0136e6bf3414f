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
