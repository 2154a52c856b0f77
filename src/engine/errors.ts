/**
 * Errors, by whose they are.
 *
 * A `BasinError` is user-facing: its message is meant for the person at the keyboard (in the
 * terminal or in the editor), names the file when there is one and says what is wrong, and is
 * shown without a stack trace (the CLI exits 1, the worker reports it as a user error). Two kinds
 * say more precisely whose it is:
 * - `InputError`: a file, its data or an option is wrong (the user fixes the input);
 * - `UserCodeError`: an experiment module's own code threw, or returned something Basin cannot use
 *   (the message points into the module, source-mapped).
 * Both are `BasinError`s, so whatever tests `instanceof BasinError` handles them unchanged.
 *
 * An `InternalError` is the opposite: an invariant of Basin's own code was broken. It is not a
 * `BasinError` on purpose, so it is reported as a bug (the CLI's "internal error", exit 70), never
 * as something the user did wrong. Anything else that escapes is a bug too.
 *
 * Messages name no CLI flag: the extension shows them as well. Where an option matters, they name
 * it as the CLI and the settings share it ("hvp: fd").
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

/** A file, its data or an option is wrong; the message says what and, when useful, how to fix it. */
export class InputError extends BasinError {
  constructor(message: string, file?: string) {
    super(message, file);
    this.name = 'InputError';
  }
}

/** An experiment module's code threw, or returned something Basin cannot use. */
export class UserCodeError extends BasinError {
  constructor(message: string, file?: string) {
    super(message, file);
    this.name = 'UserCodeError';
  }
}

/** An invariant of Basin's own code was broken: a bug, reported as one (not a `BasinError`). */
export class InternalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InternalError';
  }
}
