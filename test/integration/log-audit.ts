// Checks the Raft log a node wrote against what the front end lets through: every normal entry is
// a CommandBatch of commands that pass the request limits, the broker's own checks and the version
// gate under the settings in force at that entry. The node must be stopped first: LevelDB's lock
// lets one process open a data directory at a time.
import { type BrokerLimits, type Command, commandKind, defaultLimits, validateCommand, versionGateError } from "@raftmq/broker";
import { raftmq } from "@raftmq/proto";
import { decodeConfChange, type Entry, EntryType } from "@raftmq/raft";
import { settingsFromProto } from "../../packages/broker/src/cluster-settings.ts";
import { requestLimitError } from "../../packages/server/src/request-limits.ts";
import { RaftStorage } from "../../packages/storage/src/index.ts";

/** What was in force just before the first audited entry. */
export interface AuditStart {
  limits: Readonly<BrokerLimits>;
  machineVersion: number;
}

/** What a node's Cluster.Status says is in force at its applied index. */
export function auditStartOf(status: Pick<raftmq.v1.StatusResponse.$Properties, "settings" | "machineVersion">): AuditStart {
  return { limits: settingsFromProto(status.settings, defaultLimits), machineVersion: status.machineVersion ?? 1 };
}

export interface AuditFinding {
  index: number;
  /** The command's place in its batch; null for a problem with the entry as a whole. */
  position: number | null;
  problem: string;
  /** The command (or the entry's bytes) as JSON, cut short. */
  shown: string;
}

export interface AuditReport {
  entries: number;
  commands: number;
  /** Commands per kind, to show what the audit saw. */
  kinds: Map<string, number>;
  findings: AuditFinding[];
}

const SHOWN_CHARS = 400;

function shown(value: unknown): string {
  const json = JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? `<${v.byteLength} bytes>` : v)) ?? String(value);
  return json.length > SHOWN_CHARS ? `${json.slice(0, SHOWN_CHARS)} ...` : json;
}

/** Where in a decoded message a field unknown to this code was kept, or null. */
function unknownFieldsAt(value: unknown, path: string): string | null {
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return null;
  const unknowns = (value as { $unknowns?: unknown[] }).$unknowns;
  if (Array.isArray(unknowns) && unknowns.length > 0) return path === "" ? "the command" : path;
  for (const [key, v] of Object.entries(value)) {
    const inner = unknownFieldsAt(v, path === "" ? key : `${path}.${key}`);
    if (inner !== null) return inner;
  }
  return null;
}

/** Why `command` should never have entered the log, or null. */
function commandProblem(command: Command, limits: Readonly<BrokerLimits>, machineVersion: number): string | null {
  const kind = commandKind(command);
  if (kind === null) return "carries no operation, or more than one";
  const unknown = unknownFieldsAt(command, "");
  if (unknown !== null) return `keeps fields this version does not know, in ${unknown}`;
  const error = requestLimitError(command, limits) ?? validateCommand(command, limits) ?? versionGateError(kind, command, machineVersion);
  return error === null ? null : `${kind}: ${error.code}: ${error.message}`;
}

/**
 * Audits `entries` in log order. A valid SetClusterSettings moves the limits and the version in
 * force for the entries after it, as apply does.
 */
export function auditEntries(entries: Iterable<Entry>, start: AuditStart): AuditReport {
  let limits = start.limits;
  let machineVersion = start.machineVersion;
  const report: AuditReport = { entries: 0, commands: 0, kinds: new Map(), findings: [] };
  const find = (index: number, position: number | null, problem: string, value: unknown) => report.findings.push({ index, position, problem, shown: shown(value) });
  for (const entry of entries) {
    report.entries++;
    if (entry.type === EntryType.ENTRY_TYPE_CONF_CHANGE) {
      try {
        decodeConfChange(entry.data);
      } catch (error) {
        find(entry.index, null, `a conf change entry that does not decode: ${String(error)}`, entry.data);
      }
      continue;
    }
    if (entry.type !== EntryType.ENTRY_TYPE_NORMAL) {
      find(entry.index, null, `an entry of unknown type ${entry.type}`, entry.data);
      continue;
    }
    // A new leader's no-op.
    if (entry.data.byteLength === 0) continue;
    let batch: raftmq.v1.CommandBatch;
    try {
      batch = raftmq.v1.CommandBatch.decode(entry.data);
    } catch (error) {
      find(entry.index, null, `not a CommandBatch: ${String(error)}`, entry.data);
      continue;
    }
    if (batch.commands.length === 0) find(entry.index, null, "a CommandBatch without commands", batch);
    const unknown = unknownFieldsAt({ ...batch, commands: [] }, "");
    if (unknown !== null) find(entry.index, null, `the batch keeps fields this version does not know, in ${unknown}`, batch);
    for (let i = 0; i < batch.commands.length; i++) {
      const command = batch.commands[i] as Command;
      report.commands++;
      const kind = commandKind(command) ?? "(none)";
      report.kinds.set(kind, (report.kinds.get(kind) ?? 0) + 1);
      const problem = commandProblem(command, limits, machineVersion);
      if (problem !== null) {
        find(entry.index, i, problem, command);
        continue;
      }
      const settings = command.setClusterSettings;
      if (settings != null && (settings.machineVersion ?? 0) >= machineVersion) {
        machineVersion = settings.machineVersion ?? machineVersion;
        limits = settingsFromProto(settings.settings, limits);
      }
    }
  }
  return report;
}

export interface StoredLog {
  firstIndex: number;
  lastIndex: number;
  entries: Entry[];
}

/** Entries read from storage per step. */
const READ_BYTES = 8 * 1024 * 1024;

/** The entries after `afterIndex` in the data directory of a stopped node. */
export async function readStoredLog(dir: string, afterIndex: number): Promise<StoredLog> {
  const storage = await RaftStorage.open({ dir });
  try {
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    const entries: Entry[] = [];
    for (let lo = Math.max(afterIndex + 1, firstIndex); lo <= lastIndex; ) {
      const got = storage.entries(lo, lastIndex + 1, READ_BYTES);
      for (const e of got) entries.push(e);
      lo += got.length;
    }
    return { firstIndex, lastIndex, entries };
  } finally {
    await storage.close();
  }
}
