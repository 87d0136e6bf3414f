// Errors a user can cause end in one line and exit code 2; anything else is a bug and keeps its stack.

/** Bad input or an environment problem the user can fix. `message` is the whole line shown. */
export class UsageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UsageError';
  }
}

/** The exit code for every error a user can fix. */
export const USAGE_EXIT_CODE = 2;

/** An error's message (anything thrown that is not an Error, as text), for counting and reporting it. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
