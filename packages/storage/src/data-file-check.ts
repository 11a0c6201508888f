// The file-level half of the verification at open: every LevelDB file of the data directory
// against its own checksums. The record-level half (keyed CRC-32C of every value, the log's
// structure) runs as the log is loaded.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { CorruptionError } from "./errors.ts";
import { checkTableFile, checkWriteAheadLog, type FileDamage, manifestTables, type TableKeyRange } from "./leveldb-file-format.ts";

type FileKind = "table" | "wal";

function kindOf(name: string): FileKind | null {
  // LevelDB's own text log is "LOG" (and "LOG.old"): not the write-ahead log.
  if (/^\d+\.(ldb|sst)$/.test(name)) return "table";
  if (/^\d+\.log$/.test(name)) return "wal";
  return null;
}

async function readIfPresent(path: string): Promise<Uint8Array | null> {
  try {
    return await readFile(path);
  } catch (error) {
    // Compaction deletes obsolete files while we look: a file gone is not damage.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

async function filesOf(dir: string, kind: FileKind): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  return names.filter((name) => kindOf(name) === kind).sort();
}

/** The data files of `kind` in `dir` now, for a later check restricted to them. */
export async function dataFilesOf(dir: string, kind: FileKind): Promise<ReadonlySet<string>> {
  return new Set(await filesOf(dir, kind));
}

/**
 * Throws CorruptionError naming the first damaged file of `kind` in `dir`. With `only`, just those
 * files: an open database writes new tables in the background (a flush, a compaction), and a
 * table being written is not damage.
 */
export async function checkDataFiles(dir: string, kind: FileKind, only?: ReadonlySet<string>): Promise<void> {
  for (const name of await filesOf(dir, kind)) {
    if (only !== undefined && !only.has(name)) continue;
    const bytes = await readIfPresent(join(dir, name));
    if (bytes === null) continue;
    const damage: FileDamage = kind === "table" ? checkTableFile(bytes) : checkWriteAheadLog(bytes);
    if (damage !== null) throw new CorruptionError(`${kind === "table" ? "table file" : "write-ahead log"} ${name}`, dir, damage);
  }
}

/**
 * The tables in `dir` whose keys LevelDB's MANIFEST says all satisfy `dead` (records deleted
 * but not yet compacted away): checking them at open would only read garbage. Empty when the
 * MANIFEST cannot be read, so that every table is checked then.
 */
export async function deadTables(dir: string, dead: (range: TableKeyRange) => boolean): Promise<ReadonlySet<string>> {
  const out = new Set<string>();
  const current = await readIfPresent(join(dir, "CURRENT"));
  if (current === null) return out;
  const name = new TextDecoder().decode(current).trim();
  if (!/^MANIFEST-\d+$/.test(name)) return out;
  const manifest = await readIfPresent(join(dir, name));
  if (manifest === null) return out;
  const tables = manifestTables(manifest);
  if (tables === null) return out;
  for (const [number, range] of tables) if (dead(range)) out.add(`${String(number).padStart(6, "0")}.ldb`);
  return out;
}
