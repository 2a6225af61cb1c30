// The two families of errors (cliffy's model): user errors print one line and map to an exit code in
// main.ts; anything else is a bug and crashes with its stack.

/** Bad command line: unknown command or flag, missing or malformed value. Exit status 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The operation failed or was refused for a reason the user can act on. Exit status 1. */
export class CoinError extends Error {
  override name = "CoinError";
  /** Stable machine-readable reason, e.g. `insufficient_funds`, when one applies. */
  readonly code: string | undefined;
  constructor(message: string, options?: { code?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = options?.code;
  }
}

/**
 * A transfer may still commit or not: an attempt reached the network and its fate is not known. Paying
 * again could pay twice. Exit status 4.
 */
export class OutcomeUnknownError extends CoinError {
  override name = "OutcomeUnknownError";
}

/** Stopped by Ctrl-C (SIGINT) or SIGTERM before the work was done. Exit status 130. */
export class InterruptedError extends Error {
  override name = "InterruptedError";
}

/** The server cannot reach a majority and stops rather than fork. Exit status 3. */
export class ConsensusLostError extends Error {
  override name = "ConsensusLostError";
}
