// The durable Raft log: hard state, entries and the latest snapshot's manifest in one LevelDB
// data directory, the snapshot's data in a database of its own beside them (snapshot-db.ts).
// Writes are group commits (one synced batch per call, one call at a time); reads are
// synchronous, served from memory (terms, the log tail) or LevelDB's getSync.
import { readdir } from "node:fs/promises";
import { ClassicLevel, type Snapshot as LevelSnapshot } from "classic-level";
import {
  CompactedError,
  type ConfState,
  type Entry,
  type HardState,
  type InitialState,
  type LogStorage,
  type Snapshot,
  UnavailableError,
} from "@raftmq/raft";
import { checkDataFiles, dataFilesOf, deadTables } from "./data-file-check.ts";
import { CorruptionError, DataDirLockedError, StorageContractError, StorageFailedError, UnsupportedFormatError } from "./errors.ts";
import {
  type BatchOp,
  decodeEntry,
  decodeFormatVersion,
  decodeHardState,
  decodeIndexRecord,
  decodeLogAnchor,
  decodeLogEnd,
  decodeSnapshotManifest,
  encodeFormatVersion,
  encodeHardState,
  encodeIndexRecord,
  encodeLogAnchor,
  encodeLogEnd,
  frame,
  type LogAnchor,
  pushEntryPuts,
  type SnapshotManifest,
} from "./record-codec.ts";
import {
  droppedThroughKey,
  entriesStartKey,
  entryIndexOf,
  entryKey,
  entryKeysEnd,
  formatKey,
  hardStateKey,
  legacyHardStateKey,
  legacyLogEndKey,
  logAnchorKey,
  logEndKey,
  RecordKind,
  snapshotChunkOf,
  snapshotManifestKey,
} from "./record-keys.ts";
import { SnapshotDb } from "./snapshot-db.ts";
import { readSnapshotData, snapshotChunkDels, snapshotManifestPut } from "./snapshot-records.ts";
import { TailCache } from "./tail-cache.ts";
import { TermRuns } from "./term-runs.ts";

/** The on-disk layout this code writes and reads. Bump it with any change to record-keys/codec. */
export const STORAGE_FORMAT_VERSION = 3;
/** Format 1 differs from 2 only in where the hard state and the log end are kept; open() moves them. */
const FORMAT_WITH_LEGACY_KEYS = 1;
/** Format 2 differs from 3 only in keeping the snapshot's chunks in the log's database; open() moves them. */
const FORMAT_WITH_CHUNKS_IN_LOG = 2;
/**
 * LevelDB's memtable: a larger one writes fewer, larger level-0 tables and so compacts less
 * often (about a third less CPU per appended KiB here than LevelDB's 4 MiB default). LevelDB
 * may hold two of them while one is being flushed.
 */
export const DEFAULT_WRITE_BUFFER_BYTES = 32 * 1024 * 1024;
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
/**
 * Table files LevelDB keeps open (its default is 1,000). LevelDB maps the tables it reads into
 * memory, and what it has read of an open table stays resident: this bounds that to about this
 * many times its 2 MiB table size, plus the larger level-0 tables the memtable is flushed to.
 */
export const LOG_MAX_OPEN_FILES = 100;
/** Snapshot data is stored in records of at most this size. */
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Entries kept below a new snapshot so a follower slightly behind catches up from the log. */
export const DEFAULT_SNAPSHOT_KEEP_ENTRIES = 5000;
/**
 * Entries carrying at least this many bytes are encoded, and handed to LevelDB, each in an
 * event-loop turn of its own: copying and checksumming 16 MiB, then LevelDB's copy of it into
 * its write batch, take tens of milliseconds each, and Raft's timers must not wait for all of it
 * at once.
 */
export const LARGE_WRITE_BYTES = 4 * 1024 * 1024;

/** Of `tables`, those that may hold a live record: all of them if the log anchor cannot be read. */
async function tablesToCheck(db: Database, dir: string, tables: ReadonlySet<string>): Promise<ReadonlySet<string>> {
  let anchorIndex: number;
  try {
    const value = db.getSync(logAnchorKey);
    anchorIndex = value === undefined ? 0 : decodeLogAnchor(logAnchorKey, value, dir).index;
  } catch {
    // Damage there is reported when the log loads.
    return tables;
  }
  const below = (key: Uint8Array) => {
    const index = entryIndexOf(key);
    return index !== undefined && index <= anchorIndex;
  };
  const dead = await deadTables(dir, (range) => below(range.smallest) && below(range.largest));
  return new Set([...tables].filter((name) => !dead.has(name)));
}

/** Resolves once the event loop has run its timers and I/O. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
/**
 * Compacted entry records deleted per queued write. Deleting is LevelDB's work per key (tens of
 * microseconds here), so thousands at once would hold up the saves behind them.
 */
export const DROP_ENTRIES_PER_WRITE = 256;
/**
 * Bytes of tables at or below the log's start past which they are compacted away once entries
 * are dropped. LevelDB alone reaches them only when the levels they sit in fill up: a log's keys
 * only grow, and its old entries were moved down whole, so their deletes could wait there for
 * gigabytes of writes.
 */
export const COMPACT_DROPPED_BYTES = 32 * 1024 * 1024;
/** Entries read per step while loading the log at open. */
const LOAD_BATCH_ENTRIES = 1024;


export interface StorageOptions {
  dir: string;
  /** Bytes of decoded log tail held in memory. */
  cacheBytes?: number;
  snapshotChunkBytes?: number;
  /**
   * Check every LevelDB file against its own checksums at open (on by default). Costs one
   * read of the data directory, which snapshots keep about as large as the retained log.
   */
  verifyFiles?: boolean;
  /** LevelDB's memtable size (default DEFAULT_WRITE_BUFFER_BYTES). */
  writeBufferBytes?: number;
  /** Tables of dropped entries past which they are compacted away (default COMPACT_DROPPED_BYTES). */
  compactDroppedBytes?: number;
}

export interface StorageUpdate {
  hardState: HardState | null;
  entries: Entry[];
  snapshot: Snapshot | null;
}

type Database = ClassicLevel<Uint8Array, Uint8Array>;

const EMPTY_MANIFEST: SnapshotManifest = {
  meta: { index: 0, term: 0, confState: { voters: [], learners: [] } },
  dataBytes: 0,
  chunkCount: 0,
  dataChecksum: 0,
};

interface LoadedState {
  hardState: HardState;
  anchor: LogAnchor;
  manifest: SnapshotManifest;
  /** The latest snapshot's data, read and verified at open; null without a snapshot. */
  snapshotData: Uint8Array | null;
  /** The latest snapshot's database; null without a snapshot. */
  snapshotDb: SnapshotDb | null;
  lastIndex: number;
  terms: TermRuns;
  cache: TailCache;
}

export class RaftStorage implements LogStorage {
  private hardState: HardState;
  private anchor: LogAnchor;
  private manifest: SnapshotManifest;
  private last: number;
  private readonly terms: TermRuns;
  private readonly cache: TailCache;
  private failure: StorageFailedError | null = null;
  private closed = false;
  /** Settles when every queued write has; writes run one at a time in call order. */
  private writeTail: Promise<void> = Promise.resolve();
  /**
   * While a write that deletes or overwrites records is in flight, reads go to the database
   * as it was before it: the in-memory indexes still describe that state until the write lands.
   */
  private readView: LevelSnapshot | null = null;
  /**
   * The latest snapshot's data as long as something still holds it (a transfer to a follower,
   * the state restored from it), so that sending it again does not read and verify it again.
   */
  private snapshotData: { index: number; data: WeakRef<Uint8Array> } | null = null;
  /**
   * The data read at open, held until snapshot() first hands it out: the node restores its state
   * from it right after open, and a collection between the two would have it read again.
   */
  private openedSnapshotData: Uint8Array | null = null;
  /** The database of the snapshot the manifest names; null while there is none. */
  private snapshotDb: SnapshotDb | null;
  /** Settles when the snapshot database being written, if any, is; one is written at a time. */
  private snapshotWrites: Promise<unknown> = Promise.resolve();
  /** Settles when the compaction of dropped entries under way, if any, has; one runs at a time. */
  private compacting: Promise<void> = Promise.resolve();
  private compactionsOfDropped = 0;

  private constructor(
    private readonly db: Database,
    readonly dir: string,
    private readonly chunkBytes: number,
    loaded: LoadedState,
    private readonly compactDroppedBytes: number,
  ) {
    this.hardState = loaded.hardState;
    this.anchor = loaded.anchor;
    this.manifest = loaded.manifest;
    this.last = loaded.lastIndex;
    this.terms = loaded.terms;
    this.cache = loaded.cache;
    this.snapshotDb = loaded.snapshotDb;
    if (loaded.snapshotData !== null) this.rememberSnapshotData(loaded.manifest.meta.index, loaded.snapshotData);
    this.openedSnapshotData = loaded.snapshotData;
  }

  static async open(options: StorageOptions): Promise<RaftStorage> {
    const { dir } = options;
    if (typeof dir !== "string" || dir === "") throw new RangeError("storage dir must be a non-empty path");
    const cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    const chunkBytes = options.snapshotChunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw new RangeError(`snapshotChunkBytes must be a positive integer, got ${chunkBytes}`);
    const cache = new TailCache(cacheBytes);

    const verifyFiles = options.verifyFiles ?? true;
    // Before LevelDB replays the write-ahead log: its recovery skips a damaged record silently.
    if (verifyFiles) await checkDataFiles(dir, "wal");
    const writeBufferSize = options.writeBufferBytes ?? DEFAULT_WRITE_BUFFER_BYTES;
    if (!Number.isSafeInteger(writeBufferSize) || writeBufferSize < 64 * 1024) throw new RangeError(`writeBufferBytes must be an integer of at least 64 KiB, got ${writeBufferSize}`);
    // A directory that already holds LevelDB files must open as the database they form: were its
    // CURRENT file lost, LevelDB would otherwise start an empty database beside them, and the node
    // would run with an empty log under its old id.
    const holdsData = await holdsLevelDbFiles(dir);
    // The tables there before LevelDB opens: the ones to check once it has, since it removes
    // those a crash left half-written and may meanwhile be writing new ones in the background.
    const tablesBefore = await dataFilesOf(dir, "table");
    const db: Database = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view", writeBufferSize, maxOpenFiles: LOG_MAX_OPEN_FILES, createIfMissing: !holdsData });
    try {
      await db.open();
    } catch (error) {
      const opened = holdsData && isMissingFileList(error) ? new CorruptionError("database files", dir, `LevelDB's file list is missing or unreadable although the directory holds data: ${errorMessage(error)}`, { cause: error }) : openError(dir, error);
      if (opened instanceof DataDirLockedError) throw opened;
      // A table LevelDB cannot read (truncated, say) surfaces as an I/O error; name the file.
      if (verifyFiles) await checkDataFiles(dir, "table");
      throw opened;
    }
    try {
      // After open, which removes the files a crash left behind (such as a half-written table).
      // Tables holding nothing but entries below the log's start are not read: LevelDB has yet
      // to compact away those deleted entries, and a log's tables are mostly such garbage.
      if (verifyFiles) await checkDataFiles(dir, "table", await tablesToCheck(db, dir, tablesBefore));
      const loaded = await load(db, dir, cache, verifyFiles, chunkBytes);
      return new RaftStorage(db, dir, chunkBytes, loaded, options.compactDroppedBytes ?? COMPACT_DROPPED_BYTES);
    } catch (error) {
      let failure = databaseError(dir, "open", error);
      if (verifyFiles && !(failure instanceof CorruptionError)) {
        failure = await checkDataFiles(dir, "table", tablesBefore).then(
          () => failure,
          (damage: unknown) => (damage instanceof CorruptionError ? damage : failure),
        );
      }
      await db.close().catch(() => undefined);
      throw failure;
    }
  }

  // ---- LogStorage: synchronous reads --------------------------------------------------

  initialState(): InitialState {
    const { voters, learners } = this.manifest.meta.confState;
    return { hardState: { ...this.hardState }, confState: { voters: [...voters], learners: [...learners] } };
  }

  firstIndex(): number {
    return this.anchor.index + 1;
  }

  lastIndex(): number {
    return this.last;
  }

  term(index: number): number {
    if (index < this.anchor.index) throw new CompactedError(index, this.firstIndex());
    if (index > this.last) throw new UnavailableError(index, this.last);
    if (index === this.anchor.index) return this.anchor.term;
    const term = this.terms.termAt(index);
    if (term === undefined) throw new Error(`storage invariant: no term recorded for held entry ${index} in ${this.dir}`);
    return term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo < this.firstIndex()) throw new CompactedError(lo, this.firstIndex());
    if (hi > this.last + 1) throw new UnavailableError(hi - 1, this.last);
    const out: Entry[] = [];
    let bytes = 0;
    for (let index = lo; index < hi; index++) {
      const entry = this.cache.get(index) ?? this.readEntry(index);
      bytes += entry.data.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  snapshot(): Snapshot {
    const { meta } = this.manifest;
    const copy = { index: meta.index, term: meta.term, confState: copyConfState(meta.confState) };
    if (meta.index === 0) return { meta: copy, data: new Uint8Array(0) };
    const opened = this.openedSnapshotData;
    this.openedSnapshotData = null;
    const held = this.snapshotData?.index === meta.index ? (opened ?? this.snapshotData.data.deref()) : undefined;
    if (held !== undefined) return { meta: copy, data: held };
    const snapshotDb = this.snapshotDb;
    if (snapshotDb === null || snapshotDb.index !== meta.index) throw new Error(`storage invariant: no database open for snapshot ${meta.index} in ${this.dir}`);
    const data = readSnapshotData(this.manifest, (key) => snapshotDb.read(key), this.dir);
    this.rememberSnapshotData(meta.index, data);
    return { meta: copy, data };
  }

  // ---- writes -------------------------------------------------------------------------

  health(): { ok: true } | { ok: false; error: Error } {
    return this.failure === null ? { ok: true } : { ok: false, error: this.failure };
  }

  /**
   * Persists what one Raft Ready asks for: a received snapshot (which replaces the log up to its
   * index), entries (replacing any conflicting suffix) and hard state, in one synced batch; a
   * snapshot's data goes ahead of it in synced groups of chunks. Nothing of it is visible to
   * reads before the promise resolves.
   */
  save(update: StorageUpdate): Promise<void> {
    return this.enqueue(() => this.applySave(update));
  }

  /**
   * Stores the application's snapshot of its state machine at `index`, replacing the previous
   * snapshot, and compacts the log through index - keepEntries.
   */
  async createSnapshot(index: number, confState: ConfState, data: Uint8Array, keepEntries = DEFAULT_SNAPSHOT_KEEP_ENTRIES): Promise<Snapshot> {
    // Checked behind the writes already queued: one of them may be the commit index it needs.
    await this.enqueue(async () => this.checkSnapshotAt(index, keepEntries));
    // The data goes to a database of its own, beside the saves queued meanwhile; the manifest,
    // in the log's database, switches to it once it is durable.
    const written = await this.writeSnapshotDb(index, data);
    let stored: { snapshot: Snapshot; from: number; through: number; previous: SnapshotDb | null };
    try {
      stored = await this.enqueue(async () => {
        this.checkSnapshotAt(index, keepEntries);
        const snapshot: Snapshot = { meta: { index, term: this.term(index), confState: copyConfState(confState) }, data };
        const ops: BatchOp[] = [];
        const manifest = snapshotManifestPut(snapshot, this.chunkBytes, ops);
        const compactTo = Math.max(this.anchor.index, index - keepEntries);
        const anchor = compactTo > this.anchor.index ? { index: compactTo, term: this.term(compactTo) } : null;
        if (anchor !== null) ops.push({ type: "put", key: logAnchorKey, value: encodeLogAnchor(logAnchorKey, anchor) });
        const previousAnchor = this.anchor.index;
        const previous = this.snapshotDb;
        await this.commit(ops, false, () => {
          this.manifest = manifest;
          this.snapshotDb = written;
          this.rememberSnapshotData(index, data);
          if (anchor !== null) this.moveAnchor(anchor);
        });
        return { snapshot, from: previousAnchor, through: this.anchor.index, previous };
      });
    } catch (error) {
      // The data of a snapshot that was not stored is not kept (the next open removes any left).
      if (this.snapshotDb !== written) await written.remove().catch(() => undefined);
      throw error;
    }
    await stored.previous?.remove().catch(() => undefined);
    await this.dropCompacted(stored.from, stored.through);
    return stored.snapshot;
  }

  /**
   * Writes snapshot data at `index` to a database of its own, one such write at a time; the
   * index must still be newer than the stored snapshot's when its turn comes.
   */
  private writeSnapshotDb(index: number, data: Uint8Array): Promise<SnapshotDb> {
    const run = this.snapshotWrites.then(async () => {
      if (this.closed) throw new StorageFailedError(this.dir, "storage is closed");
      if (this.failure !== null) throw this.failure;
      if (index <= this.manifest.meta.index) throw this.contract(`snapshot at ${index} is not newer than the stored one at ${this.manifest.meta.index}`);
      try {
        return await SnapshotDb.write(this.dir, index, data, this.chunkBytes);
      } catch (error) {
        throw this.fail("writing a snapshot", error);
      }
    });
    this.snapshotWrites = run.catch(() => undefined);
    return run;
  }

  /** Throws StorageContractError unless a snapshot at `index` may be stored now. */
  private checkSnapshotAt(index: number, keepEntries: number): void {
    if (!Number.isSafeInteger(keepEntries) || keepEntries < 0) throw this.contract(`keepEntries must be a non-negative integer, got ${keepEntries}`);
    if (index <= this.manifest.meta.index) throw this.contract(`snapshot at ${index} is not newer than the stored one at ${this.manifest.meta.index}`);
    if (index > this.last) throw this.contract(`snapshot at ${index} is beyond the log's last index ${this.last}`);
    // The state machine applies only committed entries, so a snapshot past the commit index
    // would capture entries the cluster may still discard.
    if (index > this.hardState.commit) throw this.contract(`snapshot at ${index} is past the commit index ${this.hardState.commit}: not committed`);
    if (index < this.anchor.index) throw this.contract(`snapshot at ${index} is below the compacted log start ${this.firstIndex()}`);
  }

  /**
   * Discards the entries up to and including `index`; term(index) stays answerable. The
   * latest snapshot must cover them: entries no snapshot covers cannot be thrown away.
   */
  async compact(index: number): Promise<void> {
    const previousAnchor = await this.enqueue(async () => {
      if (index <= this.anchor.index) return null;
      if (index > this.manifest.meta.index) {
        throw this.contract(`cannot compact through ${index}: the latest snapshot covers only up to ${this.manifest.meta.index}`);
      }
      const anchor = { index, term: this.term(index) };
      const previousAnchor = this.anchor.index;
      await this.commit([{ type: "put", key: logAnchorKey, value: encodeLogAnchor(logAnchorKey, anchor) }], false, () => this.moveAnchor(anchor));
      return previousAnchor;
    });
    if (previousAnchor !== null) await this.dropCompacted(previousAnchor, index);
  }

  /** Compactions of dropped entries done since open. */
  get droppedCompactions(): number {
    return this.compactionsOfDropped;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writeTail;
    await this.snapshotWrites;
    await this.compacting;
    await this.snapshotDb?.close();
    await this.db.close();
  }

  // ---- internals ----------------------------------------------------------------------

  private async applySave(update: StorageUpdate): Promise<void> {
    const ops: BatchOp[] = [];
    let needsReadView = false;
    // The log as it will be once the batch lands, built up step by step.
    let anchor = this.anchor;
    let last = this.last;
    let manifest = this.manifest;
    let snapshotKeepsLog = false;

    const snapshot = update.snapshot;
    if (snapshot !== null) {
      const { meta } = snapshot;
      if (meta.index <= this.manifest.meta.index) {
        throw this.contract(`received snapshot at ${meta.index} is not newer than the stored one at ${this.manifest.meta.index}`);
      }
      // Like etcd: entries after the snapshot survive only if the log agrees with it at its index.
      snapshotKeepsLog = meta.index <= this.last && meta.index >= this.anchor.index && this.term(meta.index) === meta.term;
      if (!snapshotKeepsLog) {
        for (let index = meta.index + 1; index <= this.last; index++) ops.push({ type: "del", key: entryKey(index) });
        last = meta.index;
      }
      // Its data is written first, below; the manifest in this batch makes it the snapshot.
      manifest = snapshotManifestPut(snapshot, this.chunkBytes, ops);
      anchor = { index: meta.index, term: meta.term };
      ops.push({ type: "put", key: logAnchorKey, value: encodeLogAnchor(logAnchorKey, anchor) });
      needsReadView = true;
    }

    const entries = this.checkedEntries(update.entries, anchor.index, last);
    const firstNew = entries[0]?.index;
    const lastNew = entries[entries.length - 1]?.index;
    let entryBytes = 0;
    for (const entry of entries) entryBytes += entry.data.byteLength;
    const large = entryBytes >= LARGE_WRITE_BYTES;
    if (firstNew !== undefined && lastNew !== undefined) {
      if (firstNew <= last) needsReadView = true;
      for (let index = lastNew + 1; index <= last; index++) ops.push({ type: "del", key: entryKey(index) });
      if (large) await nextTurn();
      pushEntryPuts(entries, ops);
      last = lastNew;
    }

    if (last !== this.last) ops.push({ type: "put", key: logEndKey, value: encodeLogEnd(logEndKey, last) });
    const hardState = update.hardState;
    if (hardState !== null) {
      this.checkHardState(hardState, last);
      ops.push({ type: "put", key: hardStateKey, value: encodeHardState(hardStateKey, hardState) });
    }

    if (ops.length === 0) return;
    const written = snapshot === null ? null : await this.writeSnapshotDb(snapshot.meta.index, snapshot.data);
    const previousSnapshotDb = this.snapshotDb;
    const previousAnchor = this.anchor.index;
    if (large) await nextTurn();
    try {
      await this.commit(ops, needsReadView, () => {
        if (snapshot !== null) {
          if (!snapshotKeepsLog) {
            this.terms.clear();
            this.cache.clear();
          }
          this.manifest = manifest;
          this.snapshotDb = written;
          this.rememberSnapshotData(snapshot.meta.index, snapshot.data);
          this.moveAnchor(anchor);
          if (!snapshotKeepsLog) this.last = anchor.index;
        }
        if (firstNew !== undefined && lastNew !== undefined) {
          this.terms.truncateFrom(firstNew);
          for (const entry of entries) this.terms.append(entry.index, entry.term);
          this.cache.append(entries);
          this.last = lastNew;
        }
        if (hardState !== null) this.hardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
      });
    } catch (error) {
      if (written !== null && this.snapshotDb !== written) await written.remove().catch(() => undefined);
      throw error;
    }
    if (written !== null) await previousSnapshotDb?.remove().catch(() => undefined);
    // Queued behind this save, not awaited by it (it runs inside the queue).
    this.dropCompacted(previousAnchor, this.anchor.index).catch(() => undefined);
  }

  /** The entries to write, as plain records, without those a snapshot already covers. */
  private checkedEntries(entries: readonly Entry[], anchorIndex: number, last: number): Entry[] {
    const out: Entry[] = [];
    let previous: number | undefined;
    for (const entry of entries) {
      if (!Number.isSafeInteger(entry.index) || !Number.isSafeInteger(entry.term) || entry.term < 0) {
        throw this.contract(`entry has index ${entry.index}, term ${entry.term}`);
      }
      if (previous !== undefined && entry.index !== previous + 1) {
        throw this.contract(`entries are not contiguous: ${entry.index} follows ${previous}`);
      }
      previous = entry.index;
      // Fresh objects: the cache must not pin whatever buffer or message the caller built.
      if (entry.index > anchorIndex) out.push({ term: entry.term, index: entry.index, type: entry.type, data: entry.data });
    }
    const first = out[0];
    if (first !== undefined && first.index > last + 1) {
      throw this.contract(`entries start at ${first.index}, leaving a gap after the last index ${last}`);
    }
    return out;
  }

  /** Hard state never goes backwards: a lower term or commit, or a second vote in a term, is a bug. */
  private checkHardState(next: HardState, last: number): void {
    const current = this.hardState;
    if (next.term < current.term) throw this.contract(`hard state term goes back from ${current.term} to ${next.term}`);
    if (next.commit < current.commit) throw this.contract(`hard state commit goes back from ${current.commit} to ${next.commit}`);
    if (next.term === current.term && current.vote !== 0 && next.vote !== current.vote) {
      throw this.contract(`hard state changes its vote in term ${current.term} from ${current.vote} to ${next.vote}`);
    }
    if (next.commit > last) throw this.contract(`hard state commit ${next.commit} is beyond the log's last index ${last}`);
  }

  /** One synced batch; `apply` updates the in-memory state only once the batch is durable. */
  private async commit(ops: BatchOp[], needsReadView: boolean, apply: () => void): Promise<void> {
    if (needsReadView) this.readView = this.db.snapshot();
    try {
      await writeOps(this.db, ops, true);
      apply();
    } catch (error) {
      throw this.fail("write", error);
    } finally {
      const view = this.readView;
      this.readView = null;
      if (view !== null) await view.close().catch(() => undefined);
    }
  }

  /** Snapshot data handed out is shared: nobody may write into it. */
  private rememberSnapshotData(index: number, data: Uint8Array): void {
    this.openedSnapshotData = null;
    this.snapshotData = { index, data: new WeakRef(data) };
  }

  private moveAnchor(anchor: LogAnchor): void {
    this.terms.dropThrough(anchor.index);
    this.cache.dropThrough(anchor.index);
    this.anchor = anchor;
    if (this.last < anchor.index) this.last = anchor.index;
  }

  /**
   * Deletes entry records in (from, through], which the anchor already marks compacted: a
   * queued write per DROP_ENTRIES_PER_WRITE of them, so that saves queued meanwhile go between.
   * Not part of the synced batch that moved the anchor: a crash, or closing meanwhile, leaves
   * them behind, and the next open removes them. Must not be awaited from inside the queue.
   */
  private async dropCompacted(from: number, through: number): Promise<void> {
    for (let lo = from; lo < through; lo += DROP_ENTRIES_PER_WRITE) {
      const hi = Math.min(through, lo + DROP_ENTRIES_PER_WRITE);
      try {
        await this.enqueue(async () => {
          try {
            // A delete per index, written without reading the entries (LevelDB's own range
            // clear reads every value it deletes, and the tables it reads stay mapped).
            await writeOps(this.db, droppedEntries(lo, hi), false);
          } catch (error) {
            throw this.fail("dropping compacted entries", error);
          }
        });
      } catch (error) {
        if (this.closed && this.failure === null) return;
        throw error;
      }
    }
    this.compactDropped(through);
  }

  /**
   * Compacts the tables at or below `through` (already dropped) once they take
   * COMPACT_DROPPED_BYTES or more: LevelDB then writes nothing back, and their space is freed.
   * Runs beside the write queue, one at a time; close() waits for it.
   */
  private compactDropped(through: number): void {
    const run = this.compacting.then(async () => {
      if (this.closed || this.failure !== null) return;
      const from = entryKey(0);
      const to = entryKey(through + 1);
      if ((await this.db.approximateSize(from, to)) < this.compactDroppedBytes) return;
      await this.db.compactRange(from, to);
      this.compactionsOfDropped++;
    });
    this.compacting = run.catch(() => undefined);
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.writeTail.then(() => {
      if (this.closed) throw new StorageFailedError(this.dir, "storage is closed");
      if (this.failure !== null) throw this.failure;
      return op();
    });
    this.writeTail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private fail(what: string, error: unknown): StorageFailedError {
    // LevelDB's own corruption reports become the cause, so a caller can tell damage from I/O trouble.
    const cause = error instanceof CorruptionError || !isLevelCorruption(error) ? error : new CorruptionError("database files", this.dir, errorMessage(error), { cause: error });
    this.failure ??= new StorageFailedError(this.dir, `${what} failed: ${errorMessage(error)}`, { cause });
    return this.failure;
  }

  private contract(detail: string): StorageContractError {
    return new StorageContractError(this.dir, detail);
  }

  private read(key: Uint8Array): Uint8Array | undefined {
    try {
      return this.readView === null ? this.db.getSync(key) : this.db.getSync(key, { snapshot: this.readView });
    } catch (error) {
      throw databaseError(this.dir, "read", error);
    }
  }

  private readEntry(index: number): Entry {
    const key = entryKey(index);
    const value = this.read(key);
    if (value === undefined) throw new CorruptionError(`entry ${index}`, this.dir, "missing although the log holds it");
    return decodeEntry(key, value, index, this.dir);
  }
}

async function load(db: Database, dir: string, cache: TailCache, verifyFiles: boolean, chunkBytes: number): Promise<LoadedState> {
  const format = db.getSync(formatKey);
  let version = STORAGE_FORMAT_VERSION;
  if (format === undefined) {
    const anyKey = await db.keys({ limit: 1 }).all();
    if (anyKey.length > 0) throw new CorruptionError("format record", dir, "missing from a non-empty data directory");
    await writeOps(db, [{ type: "put", key: formatKey, value: encodeFormatVersion(formatKey, STORAGE_FORMAT_VERSION) }], true);
  } else {
    version = decodeFormatVersion(formatKey, format, dir);
    if (version === FORMAT_WITH_LEGACY_KEYS) {
      await moveLegacyRecords(db, dir);
      version = FORMAT_WITH_CHUNKS_IN_LOG;
    }
    if (version !== FORMAT_WITH_CHUNKS_IN_LOG && version !== STORAGE_FORMAT_VERSION) throw new UnsupportedFormatError(dir, version, STORAGE_FORMAT_VERSION);
  }

  const hardStateValue = db.getSync(hardStateKey);
  const hardState = hardStateValue === undefined ? { term: 0, vote: 0, commit: 0 } : decodeHardState(hardStateKey, hardStateValue, dir);
  const anchorValue = db.getSync(logAnchorKey);
  const anchor = anchorValue === undefined ? { index: 0, term: 0 } : decodeLogAnchor(logAnchorKey, anchorValue, dir);
  const manifestValue = db.getSync(snapshotManifestKey);
  let manifest = manifestValue === undefined ? EMPTY_MANIFEST : decodeSnapshotManifest(snapshotManifestKey, manifestValue, dir);
  if (manifest.meta.index < anchor.index) {
    throw new CorruptionError("log anchor", dir, `compacted through ${anchor.index}, past the latest snapshot at ${manifest.meta.index}`);
  }
  let snapshotData: Uint8Array | null = null;
  let snapshotDb: SnapshotDb | null = null;
  if (version === FORMAT_WITH_CHUNKS_IN_LOG) {
    // Format 2 to 3: the snapshot's chunks move to a database of their own, then one synced batch
    // deletes them from the log's and records the new format. A crash between leaves format 2.
    const ops: BatchOp[] = [];
    snapshotChunkDels(manifest.meta.index, manifest.chunkCount, ops);
    if (manifest.meta.index > 0) {
      snapshotData = readSnapshotData(manifest, (key) => db.getSync(key), dir);
      snapshotDb = await SnapshotDb.write(dir, manifest.meta.index, snapshotData, chunkBytes);
      // Cut into this storage's chunk size, which may differ from the one it was stored with.
      manifest = snapshotManifestPut({ meta: manifest.meta, data: snapshotData }, chunkBytes, ops);
    }
    ops.push({ type: "put", key: formatKey, value: encodeFormatVersion(formatKey, STORAGE_FORMAT_VERSION) });
    await writeOps(db, ops, true);
  } else if (manifest.meta.index > 0) {
    snapshotDb = await SnapshotDb.open(dir, manifest.meta.index, verifyFiles);
    const opened = snapshotDb;
    try {
      snapshotData = readSnapshotData(manifest, (key) => opened.read(key), dir);
    } catch (error) {
      await opened.close().catch(() => undefined);
      throw error;
    }
  }
  try {
    await SnapshotDb.removeOthers(dir, manifest.meta.index);
    await checkOtherRecords(db, dir);
    return { ...(await loadLog(db, dir, cache, hardState, anchor)), hardState, anchor, manifest, snapshotData, snapshotDb };
  } catch (error) {
    await snapshotDb?.close().catch(() => undefined);
    throw error;
  }
}

/** The entries after the anchor, read and checked: their terms, the tail cached, the last index. */
async function loadLog(db: Database, dir: string, cache: TailCache, hardState: HardState, anchor: LogAnchor): Promise<{ lastIndex: number; terms: TermRuns; cache: TailCache }> {
  // Entries at or below the anchor are leftovers of a compaction cut short by a crash.
  if (anchor.index > 0) await dropLeftovers(db, dir, anchor.index);

  const terms = new TermRuns();
  let last = anchor.index;
  const iterator = db.iterator({ gt: entryKey(anchor.index), lt: entryKeysEnd });
  try {
    for (;;) {
      const batch = await iterator.nextv(LOAD_BATCH_ENTRIES);
      if (batch.length === 0) break;
      const decoded: Entry[] = [];
      for (const [key, value] of batch) {
        const index = entryIndexOf(key);
        if (index === undefined) throw new CorruptionError("entry key", dir, `malformed key of ${key.length} bytes in the entry range`);
        if (index !== last + 1) throw new CorruptionError(`entry ${last + 1}`, dir, `the log jumps from ${last} to ${index}`);
        const entry = decodeEntry(key, value, index, dir);
        terms.append(index, entry.term);
        decoded.push(entry);
        last = index;
      }
      cache.append(decoded);
    }
  } finally {
    await iterator.close();
  }

  const logEndValue = db.getSync(logEndKey);
  const logEnd = logEndValue === undefined ? anchor.index : decodeLogEnd(logEndKey, logEndValue, dir);
  if (last !== Math.max(logEnd, anchor.index)) {
    throw new CorruptionError(`entry ${last + 1}`, dir, `the log ends at ${last} but was written up to ${logEnd}`);
  }
  if (hardState.commit > last) {
    throw new CorruptionError("hard state", dir, `commit ${hardState.commit} is beyond the log's last index ${last}`);
  }
  return { lastIndex: last, terms, cache };
}

/**
 * Deletes the entries at or below the anchor that the last compaction did not get to: those after
 * the dropped-through record, a delete per index, without reading them. LevelDB's range clear
 * would read its way through every deleted entry not yet compacted away.
 */
async function dropLeftovers(db: Database, dir: string, anchorIndex: number): Promise<void> {
  const value = db.getSync(droppedThroughKey);
  if (value === undefined) {
    // Written before the record existed: the whole range, once.
    await db.clear({ gte: entryKey(0), lte: entryKey(anchorIndex) });
  } else {
    const dropped = decodeIndexRecord(droppedThroughKey, value, "dropped-through record", dir);
    if (dropped >= anchorIndex) return;
    for (let lo = dropped; lo < anchorIndex; lo += DROP_ENTRIES_PER_WRITE * 16) await writeOps(db, droppedEntries(lo, Math.min(anchorIndex, lo + DROP_ENTRIES_PER_WRITE * 16)), false);
    return;
  }
  await writeOps(db, [{ type: "put", key: droppedThroughKey, value: encodeIndexRecord(droppedThroughKey, anchorIndex) }], false);
}

/**
 * Deletes of the entries in (from, through], written without reading them, and the
 * dropped-through record in the same batch: the next open deletes only what is left after it.
 */
function droppedEntries(from: number, through: number): BatchOp[] {
  const ops: BatchOp[] = [];
  for (let i = from + 1; i <= through; i++) ops.push({ type: "del", key: entryKey(i) });
  ops.push({ type: "put", key: droppedThroughKey, value: encodeIndexRecord(droppedThroughKey, through) });
  return ops;
}

/** Format 1 to 2: the hard state and the log end move behind the entries, in one synced batch. */
async function moveLegacyRecords(db: Database, dir: string): Promise<void> {
  const ops: BatchOp[] = [{ type: "put", key: formatKey, value: encodeFormatVersion(formatKey, STORAGE_FORMAT_VERSION) }];
  const hardState = db.getSync(legacyHardStateKey);
  if (hardState !== undefined) {
    ops.push({ type: "put", key: hardStateKey, value: encodeHardState(hardStateKey, decodeHardState(legacyHardStateKey, hardState, dir)) });
    ops.push({ type: "del", key: legacyHardStateKey });
  }
  const logEnd = db.getSync(legacyLogEndKey);
  if (logEnd !== undefined) {
    ops.push({ type: "put", key: logEndKey, value: encodeLogEnd(logEndKey, decodeLogEnd(legacyLogEndKey, logEnd, dir)) });
    ops.push({ type: "del", key: legacyLogEndKey });
  }
  await writeOps(db, ops, true);
}

/** Every record outside the entry range is one this code writes: anything else is damage. */
async function checkOtherRecords(db: Database, dir: string): Promise<void> {
  const singletons = new Set<number>([RecordKind.Format, RecordKind.LogAnchor, RecordKind.SnapshotManifest]);
  const after = new Set<number>([RecordKind.HardState, RecordKind.LogEnd, RecordKind.DroppedThrough]);
  const stray = (key: Uint8Array) => new CorruptionError(`record ${Buffer.from(key).toString("hex")}`, dir, "a key this format never writes");
  // Snapshot chunks are kept in databases of their own since format 3; any left here are removed.
  const leftovers: BatchOp[] = [];
  // A key per step, up to the record in front of the entries: LevelDB does not step past it then.
  const below = db.keys({ lt: entryKey(0) });
  let sentinel = false;
  try {
    for (;;) {
      const key = (await below.nextv(1))[0];
      if (key === undefined) break;
      const kind = key[0] ?? 0;
      if (key.length === 1 && kind === RecordKind.EntriesStart) {
        sentinel = true;
        break;
      }
      if (key.length === 1 && singletons.has(kind)) continue;
      if (snapshotChunkOf(key) !== undefined) {
        leftovers.push({ type: "del", key });
        continue;
      }
      throw stray(key);
    }
  } finally {
    await below.close();
  }
  // A directory written before it existed gets it now.
  if (!sentinel) leftovers.push({ type: "put", key: entriesStartKey, value: frame(entriesStartKey, new Uint8Array(0)) });
  if (leftovers.length > 0) await writeOps(db, leftovers, false);
  // At most the two records behind the entries, and a third key if there is damage.
  const above = await db.keys({ gte: entryKeysEnd, limit: after.size + 1 }).all();
  for (const key of above) if (key.length !== 1 || !after.has(key[0] ?? 0)) throw stray(key);
}

function copyConfState(confState: ConfState): ConfState {
  return { voters: [...confState.voters], learners: [...confState.learners] };
}

function errorMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}

function levelCode(error: unknown): string | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as Error & { code?: unknown }).code;
    if (code === "LEVEL_LOCKED" || code === "LEVEL_CORRUPTION") return code;
  }
  return undefined;
}

const LEVELDB_DATA_FILE = /^(\d{6}\.(ldb|sst|log)|MANIFEST-\d+)$/;

async function holdsLevelDbFiles(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).some((name) => LEVELDB_DATA_FILE.test(name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

/** LevelDB could not find or read CURRENT or the MANIFEST it names. */
function isMissingFileList(error: unknown): boolean {
  return /CURRENT|MANIFEST|does not exist/.test(errorMessage(error));
}

function isLevelCorruption(error: unknown): boolean {
  return levelCode(error) === "LEVEL_CORRUPTION" || /corruption/i.test(errorMessage(error));
}

function openError(dir: string, error: unknown): Error {
  if (levelCode(error) === "LEVEL_LOCKED") return new DataDirLockedError(dir, { cause: error });
  return databaseError(dir, "open", error);
}

/** Our own typed errors pass through; LevelDB's own corruption reports become CorruptionError. */
function databaseError(dir: string, what: string, error: unknown): Error {
  if (
    error instanceof CorruptionError ||
    error instanceof UnsupportedFormatError ||
    error instanceof DataDirLockedError ||
    error instanceof StorageFailedError
  ) {
    return error;
  }
  if (isLevelCorruption(error)) return new CorruptionError("database files", dir, errorMessage(error), { cause: error });
  return new StorageFailedError(dir, `${what} failed: ${errorMessage(error)}`, { cause: error });
}

/**
 * Writes `ops` as one LevelDB batch. It is built as a chained batch, op by op in LevelDB's own
 * batch: that costs the event loop about half of what handing over an array of ops does.
 */
async function writeOps(db: Database, ops: readonly BatchOp[], sync: boolean): Promise<void> {
  const batch = db.batch();
  for (const op of ops) {
    if (op.type === "put") batch.put(op.key, op.value);
    else batch.del(op.key);
  }
  await batch.write({ sync });
}
