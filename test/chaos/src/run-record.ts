// run.json in the run folder: what a run found beyond the history (node crashes, nemesis errors,
// the verdict line), so a process that did not run the cluster itself can report the run.

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const RUN_RECORD_FILE = "run.json";

export interface RunRecord {
  readonly valid: boolean;
  readonly crashes: readonly { readonly id: number; readonly code: number | null; readonly signal: string | null }[];
  readonly nemesisErrors: readonly string[];
  readonly faults: number;
  readonly summaryLine: string;
}

export class RunRecordError extends Error {
  override name = "RunRecordError";
}

export async function writeRunRecord(dir: string, record: RunRecord): Promise<void> {
  await writeFile(join(dir, RUN_RECORD_FILE), `${JSON.stringify(record, null, 2)}\n`);
}

export async function readRunRecord(dir: string): Promise<RunRecord> {
  const path = join(dir, RUN_RECORD_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw new RunRecordError(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseRunRecord(parsed, path);
}

function parseRunRecord(v: unknown, path: string): RunRecord {
  const bad = (what: string) => new RunRecordError(`${path}: ${what}`);
  if (typeof v !== "object" || v === null) throw bad("not an object");
  const o = v as Record<string, unknown>;
  if (typeof o.valid !== "boolean") throw bad("valid must be a boolean");
  if (typeof o.faults !== "number") throw bad("faults must be a number");
  if (typeof o.summaryLine !== "string") throw bad("summaryLine must be a string");
  if (!Array.isArray(o.nemesisErrors) || !o.nemesisErrors.every((e) => typeof e === "string")) throw bad("nemesisErrors must be strings");
  if (!Array.isArray(o.crashes)) throw bad("crashes must be a list");
  const crashes = o.crashes.map((c: unknown) => {
    if (typeof c !== "object" || c === null) throw bad("a crash must be an object");
    const r = c as Record<string, unknown>;
    const code = r.code;
    const signal = r.signal;
    if (typeof r.id !== "number" || !(code === null || typeof code === "number") || !(signal === null || typeof signal === "string")) throw bad("a crash needs id, code and signal");
    return { id: r.id, code, signal };
  });
  return { valid: o.valid, crashes, nemesisErrors: o.nemesisErrors, faults: o.faults, summaryLine: o.summaryLine };
}
