// The id a StatefulSet pod chose on its first start, kept in its data dir: a pod restarted with
// its volume must come back as that id, and one whose record is gone has lost its state too.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const IDENTITY_RECORD_FILE = "raftmq-identity.json";
/** Left in a fresh volume by some file systems; its presence says nothing about our state. */
const IGNORED_ENTRIES = new Set(["lost+found"]);

export interface IdentityRecord {
  nodeId: number;
  /** False until the node has seen itself in the cluster's membership (a joiner being added). */
  joined: boolean;
}

export class IdentityRecordError extends Error {
  override name = "IdentityRecordError";
}

/** The record, null when the data dir holds nothing at all; throws when it holds state but no record. */
export function readIdentityRecord(dataDir: string): IdentityRecord | null {
  const path = join(dataDir, IDENTITY_RECORD_FILE);
  if (!existsSync(path)) {
    const entries = existsSync(dataDir) ? readdirSync(dataDir).filter((e) => !IGNORED_ENTRIES.has(e)) : [];
    // Guessing an id for state we did not write could make two nodes share one.
    if (entries.length > 0) throw new IdentityRecordError(`data dir ${dataDir} holds files but no ${IDENTITY_RECORD_FILE}; start with --node-id, or empty it`);
    return null;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new IdentityRecordError(`${path} is unreadable: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (parsed === null || typeof parsed !== "object") throw new IdentityRecordError(`${path} must hold a JSON object`);
  const { nodeId, joined } = parsed as Record<string, unknown>;
  if (typeof nodeId !== "number" || !Number.isSafeInteger(nodeId) || nodeId < 1) throw new IdentityRecordError(`${path}: nodeId must be a positive integer`);
  if (typeof joined !== "boolean") throw new IdentityRecordError(`${path}: joined must be true or false`);
  return { nodeId, joined };
}

/** Writes the record atomically (write, then rename), creating the data dir if needed. */
export function writeIdentityRecord(dataDir: string, record: IdentityRecord): void {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, IDENTITY_RECORD_FILE);
  const temp = `${path}.tmp`;
  writeFileSync(temp, `${JSON.stringify(record)}\n`);
  renameSync(temp, path);
}
