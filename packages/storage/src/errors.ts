// Typed failures of the durable log. Each carries the data directory so an operator knows
// which node's disk to look at.

/** A stored record failed its checksum or does not decode; it is never returned as data. */
export class CorruptionError extends Error {
  constructor(
    /** The damaged record, e.g. "entry 1234", "hard state", "database files". */
    readonly record: string,
    readonly dir: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`corrupted ${record} in data directory ${dir}: ${detail}`, options);
    this.name = "CorruptionError";
  }
}

/** Another process (or another instance in this one) already holds the data directory. */
export class DataDirLockedError extends Error {
  constructor(readonly dir: string, options?: { cause?: unknown }) {
    super(`data directory ${dir} is locked: another raftmq process (or storage instance) has it open`, options);
    this.name = "DataDirLockedError";
  }
}

/** The data directory was written by a format this build does not read. */
export class UnsupportedFormatError extends Error {
  constructor(readonly dir: string, readonly found: number, readonly supported: number) {
    super(`data directory ${dir} has storage format version ${found}; this build supports version ${supported} only`);
    this.name = "UnsupportedFormatError";
  }
}

/**
 * A write (or the database itself) failed. After the first failed write the storage stays
 * failed: it never acknowledges anything it did not persist.
 */
export class StorageFailedError extends Error {
  constructor(readonly dir: string, detail: string, options?: { cause?: unknown }) {
    super(`storage in ${dir} failed: ${detail}`, options);
    this.name = "StorageFailedError";
  }
}

/** The caller broke the storage contract (a gap in the log, a stale snapshot …): a bug upstream. */
export class StorageContractError extends Error {
  constructor(readonly dir: string, detail: string) {
    super(`storage contract violated in ${dir}: ${detail}`);
    this.name = "StorageContractError";
  }
}
