// Workload files: a scenario and its settings in YAML or JSON, so a team keeps its load in a file and
// shares it. The keys are the scenario command's own flag names (`payload-bytes: 200`, `rates: [200]`),
// so the file reads like the command it replaces; a flag given on the command line wins over the file.
//
// LIMITATION: a file says what load to run, not who runs it or where results go: the broker (QUEUE,
// --mode, --fifo, --channel, --maxlen, --maxmemory) and the output flags stay on the command line, so
// one file runs against any broker. Types are checked here; ranges and limits by validateConfig, as
// for flags (its messages name the flag, which is the key of the same name).

import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { UsageError } from './errors.ts';

/** A workload as the result file records it: its name, the path given and the file's text as it was. */
export interface WorkloadRecord {
  /** The file's `name`, else its file name without the extension. */
  readonly name: string;
  /** The path as given to --workload. */
  readonly file: string;
  /** The file's whole text, comments included, so a result says exactly what ran. */
  readonly content: string;
}

export interface Workload extends WorkloadRecord {
  /** The file's settings as flag values (`rates: [200, 400]` as `"200,400"`), keyed by flag name. */
  readonly flags: Readonly<Record<string, string>>;
}

/** A file over this is not a workload (they are a few lines); refusing keeps result files small. */
const MAX_WORKLOAD_BYTES = 64 * 1024;

const number = z.number().finite();
const numbers = z.union([number, z.array(number).min(1)]);

/** Every key a workload file may hold, with the type its flag takes. */
const SETTINGS = {
  name: z.string().regex(/^[\w.-]{1,80}$/),
  description: z.string(),
  scenario: z.string(),
  messages: number,
  queues: number,
  'payload-bytes': number,
  batch: number,
  publishers: number,
  rate: number,
  'linger-ms': number,
  consumers: number,
  'receive-batch': number,
  'receive-wait-ms': number,
  'visibility-timeout-ms': number,
  'max-receives': number,
  'retry-delay-ms': number,
  'task-ms': number,
  'task-dist': z.enum(['fixed', 'uniform', 'exponential']),
  'task-work': z.enum(['sleep', 'cpu']),
  'fail-rate': number,
  warmup: number,
  timeout: number,
  seed: number,
  concurrency: number,
  rates: numbers,
  duration: number,
  'warmup-sec': number,
  'retry-intervals': numbers,
  'poison-rate': number,
  'delay-ms': number,
  'delay-window-ms': number,
  'task-unit-ms': number,
  processes: number,
  'kill-at': number,
  'kill-mode': z.enum(['random', 'staged']),
  steps: numbers,
  'scale-by': z.enum(['consumers', 'processes', 'queues']),
  groups: number,
} as const;

/** Flags that say who runs a workload or where its results go: never in the file, so it runs anywhere. */
const COMMAND_LINE_ONLY = new Set(['queue', 'mode', 'fifo', 'channel', 'maxlen', 'maxmemory', 'results-dir', 'quiet', 'workload']);

/** What each key takes, said the way the error line says it. */
function expected(key: keyof typeof SETTINGS): string {
  const schema = SETTINGS[key] as z.ZodType;
  if (schema === number) return 'a number';
  if (schema === numbers) return 'a number or a list of numbers';
  if (schema instanceof z.ZodEnum) return `one of ${(schema.options as string[]).join(', ')}`;
  if (key === 'name') return 'a name of letters, digits, ".", "-" or "_"';
  return 'text';
}

const workloadSchema = z.strictObject(SETTINGS).partial();

/** The keys a workload file takes, for error lines and the README. */
export const WORKLOAD_KEYS: readonly string[] = Object.keys(SETTINGS);

/** Reads, parses and checks a workload file; every problem is one UsageError naming the file (and the key). */
export function readWorkload(file: string): Workload {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`--workload ${file}: ${code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? 'error'})`}`);
  }
  if (bytes.length > MAX_WORKLOAD_BYTES) throw new UsageError(`--workload ${file}: ${bytes.length} bytes is over the ${MAX_WORKLOAD_BYTES} a workload file may have`);
  if (bytes.includes(0) || !isUtf8(bytes)) throw new UsageError(`--workload ${file}: not text, so not YAML or JSON`);
  const content = bytes.toString('utf8');
  const lines = new LineCounter();
  const document = parseDocument(content, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  const problem = document.errors[0];
  if (problem) {
    const { line } = lines.linePos(problem.pos[0]);
    throw new UsageError(`--workload ${file}: not YAML or JSON (line ${line}): ${oneLine(problem.message)}`);
  }
  const parsed: unknown = document.toJS({ maxAliasCount: 50 });
  // What a file that is no mapping holds is not echoed: --workload may have been pointed at any file.
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`--workload ${file}: must be a mapping of settings (e.g. "scenario: throughput"), got ${parsed === null ? 'an empty file' : Array.isArray(parsed) ? 'a list' : `a single ${typeof parsed === 'string' ? 'line of text' : 'value'}`}`);
  }
  const checked = workloadSchema.safeParse(parsed);
  if (!checked.success) throw new UsageError(`--workload ${file}: ${issueLine(checked.error.issues[0]!, parsed as Record<string, unknown>)}`);
  const settings = checked.data;
  const flags: Record<string, string> = {};
  for (const [key, value] of Object.entries(settings)) {
    if (key === 'name' || key === 'description' || value === undefined) continue;
    flags[key] = Array.isArray(value) ? value.join(',') : String(value);
  }
  return { name: settings.name ?? path.basename(file).replace(/\.(ya?ml|json)$/i, ''), file, content, flags };
}

/**
 * The command line's options with the workload's settings filled in where no flag was given: a flag
 * on the command line always wins over the file.
 */
export function withWorkload<T extends Record<string, unknown>>(argv: T, workload: Workload): T {
  const merged: Record<string, unknown> = { ...argv };
  for (const [key, value] of Object.entries(workload.flags)) {
    if (merged[key] === undefined) merged[key] = value;
  }
  return merged as T;
}

function issueLine(issue: z.core.$ZodIssue, parsed: Record<string, unknown>): string {
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    if (COMMAND_LINE_ONLY.has(key)) return `"${key}" is given on the command line (--${key}${key === 'queue' ? ' or QUEUE' : ''}), not in a workload file, so one file runs against any broker`;
    return `unknown key "${oneLine(key)}"; a workload file takes: ${WORKLOAD_KEYS.join(', ')} (the broker and output flags stay on the command line)`;
  }
  const key = String(issue.path[0]) as keyof typeof SETTINGS;
  const value = parsed[key];
  const shown = typeof value === 'string' ? `"${oneLine(value)}"` : oneLine(JSON.stringify(value) ?? String(value));
  return `"${key}" must be ${expected(key)}, got ${shown}`;
}

/** Text for an error line: one line, and not too long. */
function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 117)}...` : flat;
}
