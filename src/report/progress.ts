// Progress on stderr while a run goes: a bar on a terminal, a plain line every few seconds elsewhere
// (CI logs), so a long run never looks hung. Listens to runner events; draws nothing itself on stdout.

import cliProgress from 'cli-progress';
import type { RunnerEvent } from '../runner/runner.ts';
import { formatCount, formatRate } from '../format.ts';

export interface ProgressDisplay {
  onEvent(event: RunnerEvent): void;
  stop(): void;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr, quiet = false): ProgressDisplay {
  if (quiet) return { onEvent: () => undefined, stop: () => undefined };
  return stream.isTTY ? barProgress(stream) : lineProgress(stream);
}

function barProgress(stream: NodeJS.WriteStream): ProgressDisplay {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: '{phase} [{bar}] {percentage}% | published {published} | completed {value}/{total} | {rate} | depth {depth} | {elapsed}s',
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let stopped = false;
  return {
    onEvent(event) {
      // Once stopped (a signal, the end of the run), nothing is drawn again over what follows.
      if (stopped) return;
      if (event.type === 'phase') {
        if (!started) stream.write(`${event.phase}: ${event.detail}\n`);
        return;
      }
      const p = event.progress;
      const payload = {
        phase: p.phase,
        published: formatCount(p.published),
        rate: formatRate(p.completeRatePerSec),
        depth: p.depth === undefined ? '?' : formatCount(p.depth),
        elapsed: (p.elapsedMs / 1000).toFixed(1),
      };
      if (!started) {
        bar.start(p.expected, p.completed, payload);
        started = true;
      } else {
        bar.update(p.completed, payload);
      }
    },
    stop() {
      if (started && !stopped) bar.stop();
      stopped = true;
    },
  };
}

function lineProgress(stream: NodeJS.WriteStream, everyMs = 5000): ProgressDisplay {
  let lastPrintMs = -Infinity;
  return {
    onEvent(event) {
      if (event.type === 'phase') {
        stream.write(`${event.phase}: ${event.detail}\n`);
        return;
      }
      const p = event.progress;
      if (p.elapsedMs - lastPrintMs < everyMs) return;
      lastPrintMs = p.elapsedMs;
      stream.write(
        `${p.phase} ${(p.elapsedMs / 1000).toFixed(0)}s: published ${formatCount(p.published)}, ` +
          `completed ${formatCount(p.completed)}/${formatCount(p.expected)} (${formatRate(p.completeRatePerSec)}), ` +
          `depth ${p.depth === undefined ? '?' : formatCount(p.depth)}\n`,
      );
    },
    stop() {},
  };
}
