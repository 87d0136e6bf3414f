// Progress on stderr while a run goes: a bar on a terminal, a plain line every few seconds elsewhere
// (CI logs), so a long run never looks hung. Listens to runner events; draws nothing itself on stdout.

import cliProgress from 'cli-progress';
import type { RunnerEvent } from '../runner/runner.ts';
import { formatCount, formatEta, formatRate } from '../format.ts';
import type { RunProgress } from '../outcome.ts';

export interface ProgressDisplay {
  onEvent(event: RunnerEvent): void;
  stop(): void;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr, quiet = false): ProgressDisplay {
  if (quiet) return { onEvent: () => undefined, stop: () => undefined };
  return stream.isTTY ? barProgress(stream) : lineProgress(stream);
}

/** Shown where the ETA cannot be estimated yet (nothing completed, or under a second in). */
export const NO_ETA = '—';

/**
 * The time left in the current step: what remains of its expected count at the rate it has completed
 * so far (its mean over the step, steadier than the last tick's). NO_ETA until that can be told.
 */
export function etaOf(p: RunProgress): string {
  const remaining = Math.max(0, p.expected - p.completed);
  if (remaining === 0) return formatEta(0);
  if (p.completed <= 0 || p.elapsedMs < 1000) return NO_ETA;
  return formatEta(remaining / (p.completed / (p.elapsedMs / 1000)));
}

/** `rate 3,000/s (2/3) ` in a run of several steps, else nothing. */
export function stepOf(p: RunProgress): string {
  return p.step === undefined ? '' : `${p.step.label} (${p.step.index + 1}/${p.step.count}) `;
}

/** The figures both displays show, formatted alike. */
function figures(p: RunProgress): Record<string, string> {
  return {
    step: stepOf(p),
    phase: p.phase,
    completed: formatCount(p.completed),
    expected: formatCount(p.expected),
    timeLeft: etaOf(p),
    published: formatCount(p.published),
    rate: formatRate(p.completeRatePerSec),
    depth: p.depth === undefined ? '?' : formatCount(p.depth),
    elapsed: (p.elapsedMs / 1000).toFixed(1),
  };
}

function barProgress(stream: NodeJS.WriteStream): ProgressDisplay {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      // Most telling first: a narrow terminal cuts the line's end.
      format: '{step}{phase} [{bar}] {percentage}% | completed {completed}/{expected} | ETA {timeLeft} | {rate} | published {published} | depth {depth} | {elapsed}s',
      barsize: 20,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let stopped = false;
  let total = 0;
  return {
    onEvent(event) {
      // Once stopped (a signal, the end of the run), nothing is drawn again over what follows.
      if (stopped) return;
      if (event.type === 'phase') {
        if (!started) stream.write(`${event.phase}: ${event.detail}\n`);
        return;
      }
      const p = event.progress;
      if (!started) {
        bar.start(p.expected, p.completed, figures(p));
        started = true;
        total = p.expected;
        return;
      }
      // A new step of a multi-step scenario counts against its own total.
      if (p.expected !== total) {
        bar.setTotal(p.expected);
        total = p.expected;
      }
      bar.update(p.completed, figures(p));
    },
    stop() {
      if (started && !stopped) bar.stop();
      stopped = true;
    },
  };
}

function lineProgress(stream: NodeJS.WriteStream, everyMs = 5000): ProgressDisplay {
  let lastPrintMs = -Infinity;
  let lastStep: number | undefined;
  return {
    onEvent(event) {
      if (event.type === 'phase') {
        stream.write(`${event.phase}: ${event.detail}\n`);
        return;
      }
      const p = event.progress;
      // Each step's clock starts again at 0: its first tick is shown, then one every everyMs.
      if (p.step?.index !== lastStep) {
        lastStep = p.step?.index;
        lastPrintMs = -Infinity;
      }
      if (p.elapsedMs - lastPrintMs < everyMs) return;
      lastPrintMs = p.elapsedMs;
      const f = figures(p);
      stream.write(
        `${f.step}${f.phase} ${(p.elapsedMs / 1000).toFixed(0)}s: completed ${f.completed}/${f.expected}, ETA ${f.timeLeft} (${f.rate}), ` +
          `published ${f.published}, depth ${f.depth}\n`,
      );
    },
    stop() {},
  };
}
