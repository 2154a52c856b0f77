/**
 * User-facing errors. A `BasinError` carries a message meant for the person at the keyboard: it
 * names the file and what is wrong, and is printed without a stack trace. Anything else that
 * escapes is a bug in Basin and is reported as one.
 */
export class BasinError extends Error {
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'BasinError';
  }
}

export function describeError(e: unknown): string {
  if (e instanceof BasinError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
