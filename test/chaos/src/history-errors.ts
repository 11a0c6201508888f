// Typed errors for history files and for histories that break the harness's own rules.

/** A line of a history file that is not a valid op. */
export class HistoryParseError extends Error {
  constructor(
    readonly path: string,
    readonly lineNumber: number,
    readonly reason: string,
  ) {
    super(`${path}:${lineNumber}: ${reason}`);
    this.name = "HistoryParseError";
  }
}

/**
 * A history the workload could not have produced: a value published twice, a completion
 * without its invoke. The checker refuses it rather than give a verdict on nonsense.
 */
export class MalformedHistoryError extends Error {
  constructor(
    readonly opIndex: number,
    readonly reason: string,
  ) {
    super(`op #${opIndex}: ${reason}`);
    this.name = "MalformedHistoryError";
  }
}

/** The recorder was used after close, or its file could not be written. */
export class RecorderError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RecorderError";
  }
}
