// What an operator tool needs to know about a data directory before it wipes one: whether it is
// a raftmq data directory at all, whether a process holds it, and whether its data checks out
// (the same full verification a node runs at startup).
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { CorruptionError, DataDirLockedError, RaftStorage, SNAPSHOTS_DIR } from "@raftmq/storage";
import { IDENTITY_RECORD_FILE } from "./identity-record.ts";

export type DataDirVerdict =
  | { kind: "absent" }
  | { kind: "foreign"; strangers: string[] }
  | { kind: "in-use" }
  | { kind: "intact"; lastIndex: number }
  | { kind: "corrupt"; error: CorruptionError }
  | { kind: "unreadable"; error: Error };

/** The body store's folder inside the data directory (its segments, LevelDB databases of their own). */
export const BODIES_DIR = "bodies";

/** Names LevelDB and raftmq put in a data directory; anything else means it is someone else's. */
const OURS = [/^\d{6}\.(log|ldb|sst)$/, /^MANIFEST-\d{6}$/, /^CURRENT$/, /^LOCK$/, /^LOG(\.old)?$/, /^\d{6}\.dbtmp$/, /^lost\+found$/];
const LEVELDB_MARKERS = [/^CURRENT$/, /^MANIFEST-\d{6}$/, /^\d{6}\.(log|ldb|sst)$/];

function isOurs(name: string): boolean {
  return name === IDENTITY_RECORD_FILE || name === `${IDENTITY_RECORD_FILE}.tmp` || name === BODIES_DIR || name === `${BODIES_DIR}.new` || name === SNAPSHOTS_DIR || OURS.some((re) => re.test(name));
}

async function entriesOf(dir: string): Promise<string[] | null> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/** Opens the directory's storage read-through (the full check) and closes it again. */
export async function inspectDataDir(dir: string): Promise<DataDirVerdict> {
  const entries = await entriesOf(dir);
  if (entries === null || entries.length === 0) return { kind: "absent" };
  const strangers = entries.filter((name) => !isOurs(name));
  if (strangers.length > 0 || !entries.some((name) => LEVELDB_MARKERS.some((re) => re.test(name)))) return { kind: "foreign", strangers };
  try {
    const storage = await RaftStorage.open({ dir });
    const lastIndex = storage.lastIndex();
    await storage.close();
    return { kind: "intact", lastIndex };
  } catch (error) {
    if (error instanceof DataDirLockedError) return { kind: "in-use" };
    if (error instanceof CorruptionError) return { kind: "corrupt", error };
    return { kind: "unreadable", error: error instanceof Error ? error : new Error(String(error)) };
  }
}

/** Removes everything inside `dir` (the directory itself stays: it may be a mount point); returns what it removed. */
export async function wipeDataDir(dir: string): Promise<string[]> {
  const entries = (await entriesOf(dir)) ?? [];
  const removed = entries.filter((name) => name !== "lost+found");
  for (const name of removed) await rm(join(dir, name), { recursive: true, force: true });
  return removed;
}
