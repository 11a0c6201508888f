// Reads a history file back. A node or harness crash can cut the last line short: that line
// is dropped and reported; a bad line anywhere else is an error.

import { createReadStream } from "node:fs";
import { HistoryParseError } from "./history-errors.ts";
import type { Op } from "./history.ts";
import { parseOp } from "./parse-op.ts";

/** Longest line accepted; an op is a few hundred bytes, so anything longer is garbage. */
export const MAX_LINE_BYTES = 1 << 20;

export interface TruncatedLine {
  readonly lineNumber: number;
  readonly text: string;
}

export interface ReadHistoryResult {
  readonly ops: Op[];
  /** The unterminated, unparseable last line, when the writer died mid-line. */
  readonly truncated?: TruncatedLine;
}

export async function readHistory(path: string): Promise<ReadHistoryResult> {
  const ops: Op[] = [];
  let lineNumber = 0;
  let pending = "";

  const take = (line: string): void => {
    lineNumber += 1;
    if (line.trim() === "") return;
    const op = decode(path, lineNumber, line);
    ops.push(op);
  };

  const stream = createReadStream(path, { encoding: "utf8", highWaterMark: 1 << 16 });
  for await (const chunk of stream) {
    const text = pending + (chunk as string);
    let start = 0;
    for (let nl = text.indexOf("\n", start); nl !== -1; nl = text.indexOf("\n", start)) {
      take(text.slice(start, nl));
      start = nl + 1;
    }
    pending = text.slice(start);
    if (pending.length > MAX_LINE_BYTES) {
      throw new HistoryParseError(path, lineNumber + 1, `line longer than ${MAX_LINE_BYTES} bytes`);
    }
  }

  if (pending.trim() === "") return { ops };
  // An unterminated last line that is whole JSON is complete (a writer may close without a
  // newline); one that is not JSON was cut short by a crash.
  try {
    JSON.parse(pending);
  } catch {
    return { ops, truncated: { lineNumber: lineNumber + 1, text: pending } };
  }
  take(pending);
  return { ops };
}

function decode(path: string, lineNumber: number, line: string): Op {
  let decoded: unknown;
  try {
    decoded = JSON.parse(line);
  } catch (err) {
    throw new HistoryParseError(path, lineNumber, `not JSON: ${(err as Error).message}`);
  }
  const parsed = parseOp(decoded);
  if (!parsed.ok) throw new HistoryParseError(path, lineNumber, parsed.reason);
  return parsed.op;
}
