// Where a stored snapshot's data lives (format 3): a LevelDB database of its own per snapshot,
// `snapshots/<index>` in the data directory, holding its chunk records. The log's database keeps
// only the manifest, which names the snapshot by its index once its database is durable; a
// superseded snapshot goes as a whole directory. Kept in the log's database instead, every
// snapshot was written through the log's compactions and deleted key by key, and a deep queue's
// snapshot is tens of megabytes written every few seconds.
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { checkDataFiles, dataFilesOf } from "./data-file-check.ts";
import { syncDir } from "./dir-sync.ts";
import { CorruptionError, StorageFailedError } from "./errors.ts";
import type { BatchOp } from "./record-codec.ts";
import { snapshotChunkCount, snapshotChunkPuts } from "./snapshot-records.ts";

export const SNAPSHOTS_DIR = "snapshots";
/** Bytes of chunks per write while a snapshot is stored; the last write is synced. */
const WRITE_GROUP_BYTES = 1024 * 1024;
/** LevelDB's memtable for a snapshot's database: it is written once, then only read. */
const WRITE_BUFFER_BYTES = 4 * 1024 * 1024;
/** LevelDB's block cache: chunks are read once at open, and again only to send the snapshot. */
const CACHE_BYTES = 1024 * 1024;
const MAX_OPEN_FILES = 50;

type Database = ClassicLevel<Uint8Array, Uint8Array>;

function pathOf(root: string, index: number): string {
  return join(root, SNAPSHOTS_DIR, String(index));
}

function database(path: string, createIfMissing: boolean): Database {
  return new ClassicLevel<Uint8Array, Uint8Array>(path, {
    keyEncoding: "view",
    valueEncoding: "view",
    createIfMissing,
    writeBufferSize: WRITE_BUFFER_BYTES,
    cacheSize: CACHE_BYTES,
    maxOpenFiles: MAX_OPEN_FILES,
  });
}

export class SnapshotDb {
  private constructor(
    private readonly db: Database,
    readonly index: number,
    readonly path: string,
  ) {}

  /**
   * Writes the snapshot data at `index` into a new database, replacing any left at that index,
   * and resolves once it is durable: its chunks synced, its directory's name synced.
   */
  static async write(root: string, index: number, data: Uint8Array, chunkBytes: number): Promise<SnapshotDb> {
    const parent = join(root, SNAPSHOTS_DIR);
    const path = pathOf(root, index);
    const created = await mkdir(parent, { recursive: true });
    if (created !== undefined) await syncDir(root);
    await rm(path, { recursive: true, force: true });
    const db = database(path, true);
    try {
      await db.open();
      const chunkCount = snapshotChunkCount(data, chunkBytes);
      const groupChunks = Math.max(1, Math.floor(WRITE_GROUP_BYTES / chunkBytes));
      for (let from = 0; from < chunkCount; from += groupChunks) {
        const to = Math.min(chunkCount, from + groupChunks);
        const ops: BatchOp[] = [];
        snapshotChunkPuts(index, data, chunkBytes, from, to, ops);
        const batch = db.batch();
        for (const op of ops) if (op.type === "put") batch.put(op.key, op.value);
        await batch.write({ sync: to === chunkCount });
      }
      await syncDir(parent);
    } catch (error) {
      await db.close().catch(() => undefined);
      await rm(path, { recursive: true, force: true }).catch(() => undefined);
      throw error;
    }
    return new SnapshotDb(db, index, path);
  }

  /** Opens the stored snapshot at `index`; with `verifyFiles`, its files are checked against their own checksums. */
  static async open(root: string, index: number, verifyFiles: boolean): Promise<SnapshotDb> {
    const path = pathOf(root, index);
    try {
      await readdir(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new CorruptionError(`snapshot ${index}`, root, `its database ${path} is missing although the snapshot manifest names it`);
      throw error;
    }
    if (verifyFiles) await checkDataFiles(path, "wal");
    const tables = await dataFilesOf(path, "table");
    const db = database(path, false);
    try {
      await db.open();
    } catch (error) {
      if (verifyFiles) await checkDataFiles(path, "table");
      throw new CorruptionError(`snapshot ${index}`, root, `its database ${path} does not open: ${(error as Error).message}`, { cause: error });
    }
    try {
      if (verifyFiles) await checkDataFiles(path, "table", tables);
    } catch (error) {
      await db.close().catch(() => undefined);
      throw error;
    }
    return new SnapshotDb(db, index, path);
  }

  /** Removes every snapshot database under `root` but the one at `keep` (leftovers of snapshots superseded or never finished). */
  static async removeOthers(root: string, keep: number): Promise<void> {
    const parent = join(root, SNAPSHOTS_DIR);
    let names: string[];
    try {
      names = await readdir(parent);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    const others = names.filter((name) => name !== String(keep));
    for (const name of others) await rm(join(parent, name), { recursive: true, force: true });
    if (others.length > 0) await syncDir(parent);
  }

  read(key: Uint8Array): Uint8Array | undefined {
    try {
      return this.db.getSync(key);
    } catch (error) {
      throw new StorageFailedError(this.path, `reading snapshot ${this.index} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  async close(): Promise<void> {
    if (this.db.status === "open") await this.db.close();
  }

  /** Closes and deletes the snapshot's database. */
  async remove(): Promise<void> {
    await this.close().catch(() => undefined);
    await rm(this.path, { recursive: true, force: true });
  }
}
