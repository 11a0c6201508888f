// Appends ops to a history file as JSON lines without blocking the event loop: lines written in
// one tick go to the file in one write, and close() flushes and syncs.

import { createWriteStream, type WriteStream } from "node:fs";
import { once } from "node:events";
import { performance } from "node:perf_hooks";
import { RecorderError } from "./history-errors.ts";
import type { AckOp, CompletionType, DistributiveOmit, DrainOp, Op, OpInput, PublishOp } from "./history.ts";

export interface RecorderOptions {
  /** Milliseconds since the run started; defaults to a monotonic clock started at open. */
  readonly clock?: () => number;
  /**
   * Bytes the recorder may hold that the disk has not taken yet. Past it, the disk cannot keep
   * up with the workload and the history would be a lie by the time it is read: fail loudly.
   */
  readonly maxBufferedBytes?: number;
}

export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

/** Operations that open with an invoke and complete with ok, fail or info. */
export type InvokeInput = DistributiveOmit<PublishOp | AckOp | DrainOp, "time" | "type">;

/** What a completion may add to its invoke's fields. */
export interface CompletionExtra {
  readonly error?: string;
  /** A drain's count of delivered messages. */
  readonly value?: number;
}

/** An invoked operation awaiting its outcome; exactly one of ok, fail, info completes it. */
export interface PendingOp {
  readonly invoked: Op;
  readonly done: boolean;
  ok(extra?: CompletionExtra): Op;
  fail(extra?: CompletionExtra): Op;
  info(extra?: CompletionExtra): Op;
}

export class HistoryRecorder {
  readonly #stream: WriteStream;
  readonly #clock: () => number;
  readonly #maxBufferedBytes: number;
  #corked = false;
  #closed = false;
  #failure: Error | undefined;
  #count = 0;

  private constructor(stream: WriteStream, clock: () => number, maxBufferedBytes: number) {
    this.#stream = stream;
    this.#clock = clock;
    this.#maxBufferedBytes = maxBufferedBytes;
    stream.on("error", (err) => {
      this.#failure = err;
    });
  }

  /** Creates (or truncates) the history file at path. */
  static async open(path: string, options: RecorderOptions = {}): Promise<HistoryRecorder> {
    const stream = createWriteStream(path, { flags: "w", flush: true });
    await once(stream, "open");
    const started = performance.now();
    const clock = options.clock ?? (() => performance.now() - started);
    const limit = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    if (!(limit > 0)) throw new RecorderError(`maxBufferedBytes must be > 0 (got ${limit})`);
    return new HistoryRecorder(stream, clock, limit);
  }

  /** Ops recorded so far. */
  get count(): number {
    return this.#count;
  }

  /** The run's clock, in ms, for a harness that needs it (e.g. deadlines) on the same scale. */
  now(): number {
    return this.#clock();
  }

  /** Stamps the op's time and appends it. */
  record(input: OpInput): Op {
    const op = { ...input, time: this.#clock() } as Op;
    this.#append(op);
    return op;
  }

  /** Records the invoke and returns the handle that records its completion. */
  invoke(input: InvokeInput): PendingOp {
    return invokeOp((op) => this.record(op), input);
  }

  /** Flushes every recorded op to the file, syncs it and closes it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#corked) {
      this.#corked = false;
      this.#stream.uncork();
    }
    // A stream that failed has already closed itself; waiting for its close would hang.
    if (this.#failure === undefined && !this.#stream.closed) {
      const finished = once(this.#stream, "close");
      this.#stream.end();
      try {
        await finished;
      } catch (err) {
        throw new RecorderError("could not write the history file", { cause: err });
      }
    }
    if (this.#failure !== undefined) {
      throw new RecorderError("could not write the history file", { cause: this.#failure });
    }
  }

  #append(op: Op): void {
    if (this.#closed) throw new RecorderError(`recorder closed; cannot record ${op.f} by ${op.process}`);
    if (this.#failure !== undefined) {
      throw new RecorderError("could not write the history file", { cause: this.#failure });
    }
    if (this.#stream.writableLength > this.#maxBufferedBytes) {
      throw new RecorderError(
        `history writes are ${this.#stream.writableLength} bytes behind (limit ${this.#maxBufferedBytes})`,
      );
    }
    if (!this.#corked) {
      // Every line written in this tick leaves in one write when the tick ends.
      this.#corked = true;
      this.#stream.cork();
      process.nextTick(() => {
        if (!this.#corked) return;
        this.#corked = false;
        this.#stream.uncork();
      });
    }
    this.#stream.write(`${JSON.stringify(op)}\n`);
    this.#count += 1;
  }
}

/** Records the invoke through `record` and returns the handle that records its completion, once. */
export function invokeOp(record: (input: OpInput) => Op, input: InvokeInput): PendingOp {
  const invoked = record({ ...input, type: "invoke" } as OpInput);
  let done = false;
  const complete = (type: CompletionType, extra: CompletionExtra | undefined): Op => {
    if (done) throw new RecorderError(`${input.f} by ${input.process} completed twice`);
    done = true;
    return record({ ...input, ...extra, type } as OpInput);
  };
  return {
    invoked,
    get done() {
      return done;
    },
    ok: (extra) => complete("ok", extra),
    fail: (extra) => complete("fail", extra),
    info: (extra) => complete("info", extra),
  };
}
