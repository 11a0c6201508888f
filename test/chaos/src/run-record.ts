// run.json in the run folder: what a run found beyond the history (node crashes, nemesis errors,
// the consumer-liveness checks, the vanished consumers, the AMQP clients' counts, the verdict
// line), so a process that did not run the cluster itself can report the run.

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { AmqpWorkloadStats } from "./amqp-workload.ts";
import { WORKLOAD_KINDS, type WorkloadKind } from "./chaos-workload.ts";
import type { LivenessCheck, QueueConsumers } from "./consumer-liveness.ts";
import { VANISH_KINDS, type VanisherReport } from "./vanishing-consumers.ts";

export const RUN_RECORD_FILE = "run.json";

export interface RunRecord {
  readonly valid: boolean;
  readonly crashes: readonly { readonly id: number; readonly code: number | null; readonly signal: string | null }[];
  readonly nemesisErrors: readonly string[];
  readonly faults: number;
  readonly summaryLine: string;
  /** Absent in the records of runs made before the check existed: read as none. */
  readonly liveness: readonly LivenessCheck[];
  readonly vanishers: readonly VanisherReport[];
  /** Absent in older records: grpc. */
  readonly workload?: WorkloadKind;
  /** The AMQP clients' counts, in AMQP runs. */
  readonly amqp?: AmqpWorkloadStats;
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
  const list = (key: string): unknown[] => {
    const v = o[key];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw bad(`${key} must be a list`);
    return v;
  };
  const liveness = list("liveness").map((c) => parseLivenessCheck(c, bad));
  const vanishers = list("vanishers").map((v) => parseVanisherReport(v, bad));
  const workload = o.workload === undefined ? undefined : WORKLOAD_KINDS.find((k) => k === o.workload);
  if (o.workload !== undefined && workload === undefined) throw bad(`workload must be one of ${WORKLOAD_KINDS.join(", ")}`);
  const amqp = o.amqp === undefined ? undefined : parseAmqpStats(o.amqp, bad);
  return {
    valid: o.valid,
    crashes,
    nemesisErrors: o.nemesisErrors,
    faults: o.faults,
    summaryLine: o.summaryLine,
    liveness,
    vanishers,
    ...(workload === undefined ? {} : { workload }),
    ...(amqp === undefined ? {} : { amqp }),
  };
}

type Bad = (what: string) => RunRecordError;

function fields(v: unknown, what: string, bad: Bad): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad(`${what} must be an object`);
  return v as Record<string, unknown>;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0;
}

function parseLivenessCheck(v: unknown, bad: Bad): LivenessCheck {
  const o = fields(v, "a liveness check", bad);
  if (typeof o.phase !== "string" || typeof o.valid !== "boolean" || !isCount(o.elapsedMs) || !isCount(o.settleMs)) throw bad("a liveness check needs phase, valid, elapsedMs and settleMs");
  if (o.error !== undefined && typeof o.error !== "string") throw bad("a liveness check's error must be a string");
  if (!Array.isArray(o.queues)) throw bad("a liveness check's queues must be a list");
  const queues = o.queues.map((q: unknown): QueueConsumers => {
    const r = fields(q, "a liveness queue", bad);
    if (typeof r.queue !== "string" || !isCount(r.listed) || !isCount(r.expected) || !isCount(r.unacked)) throw bad("a liveness queue needs queue, listed, expected and unacked");
    return { queue: r.queue, listed: r.listed, expected: r.expected, unacked: r.unacked };
  });
  return { phase: o.phase, valid: o.valid, elapsedMs: o.elapsedMs, settleMs: o.settleMs, queues, ...(o.error === undefined ? {} : { error: o.error }) };
}

function parseAmqpStats(v: unknown, bad: Bad): AmqpWorkloadStats {
  const o = fields(v, "amqp", bad);
  const count = (key: keyof AmqpWorkloadStats): number => {
    const n = o[key];
    if (!isCount(n)) throw bad(`amqp.${key} must be a count`);
    return n;
  };
  return {
    publishes: count("publishes"),
    confirmed: count("confirmed"),
    nacked: count("nacked"),
    unknown: count("unknown"),
    deliveries: count("deliveries"),
    connections: count("connections"),
    reconnects: count("reconnects"),
  };
}

function parseVanisherReport(v: unknown, bad: Bad): VanisherReport {
  const o = fields(v, "a vanisher", bad);
  const kind = VANISH_KINDS.find((k) => k === o.kind);
  const target = o.target === "leader" || o.target === "follower" ? o.target : undefined;
  if (typeof o.name !== "string" || kind === undefined || target === undefined || typeof o.queue !== "string" || !isCount(o.delivered) || !isCount(o.heldAtVanish)) {
    throw bad("a vanisher needs name, kind, target, queue, delivered and heldAtVanish");
  }
  if ((o.node !== undefined && !isCount(o.node)) || (o.vanishedAt !== undefined && !isCount(o.vanishedAt))) throw bad("a vanisher's node and vanishedAt must be numbers");
  return {
    name: o.name,
    kind,
    target,
    queue: o.queue,
    delivered: o.delivered,
    heldAtVanish: o.heldAtVanish,
    ...(o.node === undefined ? {} : { node: o.node }),
    ...(o.vanishedAt === undefined ? {} : { vanishedAt: o.vanishedAt }),
  };
}
