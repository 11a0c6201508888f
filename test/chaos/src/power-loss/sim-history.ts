// The chaos history of a simulated run, kept in memory and stamped with simulated time: the same
// ops, in the same JSON-lines format, that HistoryRecorder writes for real runs.
import { RecorderError } from "../history-errors.ts";
import type { Op, OpInput } from "../history.ts";
import { type InvokeInput, invokeOp, type PendingOp } from "../history-recorder.ts";

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
    return invokeOp((op) => this.record(op), input);
  }
}

/** The history file's text: one JSON object per line. */
export function historyLines(ops: readonly Op[]): string {
  let out = "";
  for (const op of ops) out += `${JSON.stringify(op)}\n`;
  return out;
}
