// The chaos history of a simulated run, kept in memory and stamped with simulated time: the same
// ops, in the same JSON-lines format, that HistoryRecorder writes for real runs.
import { RecorderError } from "../history-errors.ts";
import type { CompletionType, Op, OpInput } from "../history.ts";
import type { CompletionExtra, InvokeInput, PendingOp } from "../history-recorder.ts";

export class SimHistory {
  readonly ops: Op[] = [];

  constructor(
    private readonly clock: () => number,
    /** Ops held at most: a run that outgrows it has a runaway workload. */
    private readonly maxOps: number,
  ) {
    if (!(Number.isInteger(maxOps) && maxOps > 0)) throw new RecorderError(`maxOps must be a positive integer (got ${maxOps})`);
  }

  record(input: OpInput): Op {
    if (this.ops.length >= this.maxOps) throw new RecorderError(`the history holds its limit of ${this.maxOps} ops`);
    const op = { ...input, time: this.clock() } as Op;
    this.ops.push(op);
    return op;
  }

  invoke(input: InvokeInput): PendingOp {
    const invoked = this.record({ ...input, type: "invoke" } as OpInput);
    let done = false;
    const complete = (type: CompletionType, extra: CompletionExtra | undefined): Op => {
      if (done) throw new RecorderError(`${input.f} by ${input.process} completed twice`);
      done = true;
      return this.record({ ...input, ...extra, type } as OpInput);
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
}

/** The history file's text: one JSON object per line. */
export function historyLines(ops: readonly Op[]): string {
  let out = "";
  for (const op of ops) out += `${JSON.stringify(op)}\n`;
  return out;
}
