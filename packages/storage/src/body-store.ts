// Message bodies, apart from the Raft log and the state machine: each node stores the body of a
// publish under the key the state machine gave it (BodyRef.key) when it applies the entry, and
// reads it back when it delivers. A body is written once at apply, not synced (the log holds it
// until the snapshot that covers it, and sync() runs before that snapshot is stored), and deleted
// when no message refers to it any more. Each value is the body followed by a CRC-32C of its key
// and bytes.
//
// The store is a folder (`bodies` in the data directory) of segments: LevelDB databases, each
// holding the bodies of one run of keys. Bodies are appended to the newest segment; once it holds
// SEGMENT_BYTES a new one begins at the next key. A segment in which no body is referred to any
// more is dropped whole (its folder renamed, synced, removed), which costs no reads and no
// writes: draining a deep queue frees its disk a segment at a time. What dies inside a segment
// that still holds live bodies is deleted key by key and compacted, so one old unconsumed message
// keeps at most its own segment's untouched remainder, and that only until the next collection.
//
// Writes go out in the order put() was called, the puts of one turn of the event loop in one
// batch per segment. Until its write lands, a body is served from memory, so a delivery in the
// same apply as its publish reads it.
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ClassicLevel } from "classic-level";
import { crc32c } from "./crc32c.ts";
import { syncDir } from "./dir-sync.ts";
import { CorruptionError, StorageFailedError } from "./errors.ts";

/** A body to store: the key the state machine gave it and its bytes. */
export interface StoredBody {
  readonly key: number;
  readonly bytes: Uint8Array;
}

export interface BodyStoreOptions {
  dir: string;
  /** LevelDB's memtable size per segment; 4 MiB (LevelDB's default) unless given. */
  writeBufferSize?: number;
  /** LevelDB's block cache per segment: the bound on the bodies read back that stay in memory. */
  cacheSize?: number;
  /** Bytes of bodies a segment takes before the next one begins; SEGMENT_BYTES unless given. */
  segmentBytes?: number;
}

/** A body the state refers to is not in the store. */
export class BodyMissingError extends Error {
  constructor(
    readonly key: number,
    readonly dir: string,
  ) {
    super(`message body ${key} is missing from the body store in ${dir}`);
    this.name = "BodyMissingError";
  }
}

const KEY_BYTES = 8;
const CRC_BYTES = 4;
const TWO_32 = 2 ** 32;
/**
 * Bytes of bodies per segment. Dropping a segment frees it at once; within one, deletes are
 * written key by key and compacted, so this bounds that work per collection and per queue.
 */
export const SEGMENT_BYTES = 256 * 1024 * 1024;
/** Deletes per write when many bodies go at once: the loop's reads and writes go between them. */
const DELETES_PER_WRITE = 4096;
/** Ranges of at least this many keys are compacted once deleted. */
const COMPACT_MIN_KEYS = 4096;
/**
 * Table files LevelDB keeps open per segment (its default is 1,000). LevelDB maps the tables it
 * reads into memory, and what it has read of an open table stays resident: this bounds that to
 * about this many times its 2 MiB table size per segment.
 */
export const BODY_STORE_MAX_OPEN_FILES = 100;
/** Keys read per step when the stored keys are listed. */
const KEYS_PER_STEP = 4096;
/**
 * A record written with sync to sync a segment: LevelDB syncs its log up to a synced write, and
 * skips a write of nothing. One byte, after every 8-byte body key.
 */
const SYNC_MARK_KEY = Uint8Array.of(0xff);
const SYNC_MARK_VALUE = new Uint8Array(0);
/** Where markMatched() keeps its frontier, in the store's `meta` database. */
const MATCHED_KEY = Uint8Array.of(0xfe);
/**
 * The highest key put by putApplied() into a segment whose write has landed: written in the same
 * batch as the bodies, so that LevelDB's in-order recovery after a crash keeps it only with every
 * body put before it. Each segment is synced before another is written, so the highest mark of
 * all segments holds for all of them.
 */
const APPLIED_KEY = Uint8Array.of(0xfd);
/** Below every mark: the 8-byte body keys of keys under 2^53 begin with a byte below 0x20. */
const MARKS_FROM = Uint8Array.of(0xfd);
const SEGMENT_NAME = /^seg-([0-9a-f]{16})$/;
const META_NAME = "meta";
const DROPPED_SUFFIX = ".drop";

export function bodyKeyBytes(key: number): Uint8Array {
  const out = new Uint8Array(KEY_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(key / TWO_32));
  view.setUint32(4, key >>> 0);
  return out;
}

/** Deletes of `count` keys, from keyAt(0) on: their keys are views into one buffer, not one each. */
function deletes(count: number, keyAt: (i: number) => number): Op[] {
  const all = new Uint8Array(count * KEY_BYTES);
  const view = new DataView(all.buffer);
  const ops: Op[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const key = keyAt(i);
    view.setUint32(i * KEY_BYTES, Math.floor(key / TWO_32));
    view.setUint32(i * KEY_BYTES + 4, key >>> 0);
    ops[i] = { type: "del", key: all.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES) };
  }
  return ops;
}

function keyOfBytes(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.getUint32(0) * TWO_32 + view.getUint32(4);
}

function sealed(keyBytes: Uint8Array, body: Uint8Array): Uint8Array {
  const value = new Uint8Array(body.length + CRC_BYTES);
  value.set(body, 0);
  new DataView(value.buffer).setUint32(body.length, crc32c(body, crc32c(keyBytes)));
  return value;
}

function segmentName(start: number): string {
  return `seg-${start.toString(16).padStart(16, "0")}`;
}

/** Bytes of the files in a folder (LevelDB's tables and log). */
async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

/**
 * A store written before segments was one LevelDB database in `dir` itself: it becomes the
 * segment of key 0. Two renames through `dir.new`; a crash between them is finished here.
 */
async function migrateSingleDatabase(dir: string): Promise<void> {
  const staging = `${dir}.new`;
  if (!(await exists(dir)) && (await exists(staging))) {
    await rename(staging, dir);
    await syncDir(dirname(dir));
    return;
  }
  if (!(await exists(join(dir, "CURRENT")))) return;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging);
  await rename(dir, join(staging, segmentName(0)));
  await syncDir(staging);
  await rename(staging, dir);
  await syncDir(dirname(dir));
}

type Op = { type: "put"; key: Uint8Array; value: Uint8Array } | { type: "del"; key: Uint8Array };
type Db = ClassicLevel<Uint8Array, Uint8Array>;

interface Segment {
  /** Its first key: no key below it is stored here. */
  readonly start: number;
  readonly dir: string;
  readonly db: Db;
  /** Resolves once the database is open; writes wait for it. */
  readonly opened: Promise<void>;
  /** The highest key put here (queued or written); -1 if none. */
  maxKey: number;
  /** Bytes of bodies put here (at open, LevelDB's estimate of its files). */
  bytes: number;
  /** The highest applied key whose mark this segment holds or has queued. */
  applied: number;
  /** Written to since its last sync (set as writes land). */
  unsynced: boolean;
  /** Deleted from since the last markMatched(). */
  deletedSinceMark: boolean;
  /** Resolves once the seal() under way, if any, is done. */
  sealing: Promise<void>;
}

/** Puts of one turn: the bodies, and which of them came from putApplied(). */
interface Queued {
  body: StoredBody;
  applied: boolean;
}

export class BodyStore {
  /** Bodies handed to put() whose write has not landed yet. */
  private readonly pending = new Map<number, Uint8Array>();
  /** Puts of this turn, in put() order, not yet handed to a write. */
  private queued: Queued[] = [];
  /** Bodies putApplied() left out because the store held them when it opened. */
  skipped = 0;
  private flushScheduled = false;
  private tail: Promise<void> = Promise.resolve();
  private compacting: Promise<void> = Promise.resolve();
  private failure: Error | null = null;
  /** The segment the last write queued went to: another is synced before the next segment is written. */
  private lastWritten: Segment | null = null;
  /** Bodies written, and keys deleted (one by one, or the span of a range cleared), since the store opened. */
  written = 0;
  writtenBytes = 0;
  deleted = 0;
  /** Ranges compacted after they were deleted. */
  compactions = 0;
  /** Bytes of bodies read back from the databases (not from memory) since the store opened. */
  readBytes = 0;
  /** Segments dropped whole since the store opened, and the keys they spanned. */
  segmentsDropped = 0;
  keysDropped = 0;

  private constructor(
    readonly dir: string,
    private readonly options: BodyStoreOptions,
    /** Ascending by start. */
    private readonly segments: Segment[],
    private readonly meta: Db,
    /** Called once, with the first failed write: the node cannot go on without its bodies. */
    private readonly onFailure: (error: Error) => void,
    /** The highest key putApplied() had written when the store opened; -1 if none. */
    readonly appliedAtOpen: number,
  ) {}

  static async open(options: BodyStoreOptions, onFailure: (error: Error) => void): Promise<BodyStore> {
    const { dir } = options;
    const opened: Segment[] = [];
    let meta: Db | null = null;
    try {
      await migrateSingleDatabase(dir);
      await mkdir(dir, { recursive: true });
      const names = await readdir(dir);
      // Drops that a crash interrupted after their rename.
      for (const name of names.filter((n) => n.endsWith(DROPPED_SUFFIX))) await rm(join(dir, name), { recursive: true, force: true });
      const starts = names
        .map((n) => SEGMENT_NAME.exec(n))
        .filter((m) => m !== null)
        .map((m) => Number.parseInt(m[1] as string, 16))
        .sort((a, b) => a - b);
      meta = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, META_NAME), { keyEncoding: "view", valueEncoding: "view", writeBufferSize: 64 * 1024, cacheSize: 64 * 1024 });
      await meta.open();
      const segments = await Promise.all(starts.map((start) => BodyStore.openSegment(options, start)));
      opened.push(...segments);
      // Only the newest is written to: how full it is decides when the next begins.
      const newest = segments[segments.length - 1];
      if (newest !== undefined) newest.bytes = await bytesUnder(newest.dir);
      let appliedAtOpen = -1;
      for (const segment of segments) appliedAtOpen = Math.max(appliedAtOpen, segment.applied);
      return new BodyStore(dir, options, segments, meta, onFailure, appliedAtOpen);
    } catch (error) {
      await Promise.all([...opened.map((s) => s.db.close()), meta?.close()].map((p) => p?.catch(() => undefined)));
      if (error instanceof CorruptionError) throw error;
      throw new StorageFailedError(dir, `the body store did not open: ${(error as Error).message}`, { cause: error });
    }
  }

  private static newDb(options: BodyStoreOptions, dir: string): Db {
    return new ClassicLevel<Uint8Array, Uint8Array>(dir, {
      keyEncoding: "view",
      valueEncoding: "view",
      writeBufferSize: options.writeBufferSize ?? 4 * 1024 * 1024,
      cacheSize: options.cacheSize ?? 8 * 1024 * 1024,
      maxOpenFiles: BODY_STORE_MAX_OPEN_FILES,
    });
  }

  private static async openSegment(options: BodyStoreOptions, start: number): Promise<Segment> {
    const dir = join(options.dir, segmentName(start));
    const db = BodyStore.newDb(options, dir);
    await db.open();
    try {
      let applied = -1;
      const mark = db.getSync(APPLIED_KEY);
      if (mark !== undefined) {
        if (mark.length !== KEY_BYTES) throw new CorruptionError("body store's applied mark", dir, `a value of ${mark.length} bytes, not ${KEY_BYTES}`);
        applied = keyOfBytes(mark);
      }
      const last = await db.keys({ lt: MARKS_FROM, reverse: true, limit: 1 }).all();
      const maxKey = last[0] === undefined ? -1 : keyOfBytes(last[0]);
      return { start, dir, db, opened: Promise.resolve(), maxKey, bytes: 0, applied, unsynced: false, deletedSinceMark: false, sealing: Promise.resolve() };
    } catch (error) {
      await db.close().catch(() => undefined);
      throw error;
    }
  }

  /** A new segment beginning at `start`, opened in the background (writes wait for it). */
  private addSegment(start: number): Segment {
    const dir = join(this.dir, segmentName(start));
    const db = BodyStore.newDb(this.options, dir);
    const opened = db.open();
    opened.catch((error: unknown) => this.fail(error));
    const segment: Segment = { start, dir, db, opened, maxKey: -1, bytes: 0, applied: -1, unsynced: false, deletedSinceMark: false, sealing: Promise.resolve() };
    const at = this.segmentIndexAtOrBelow(start) + 1;
    this.segments.splice(at, 0, segment);
    return segment;
  }

  /** The index of the last segment that starts at or below `key`; -1 if none. */
  private segmentIndexAtOrBelow(key: number): number {
    let lo = 0;
    let hi = this.segments.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.segments[mid] as Segment).start <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** The segment that holds `key` if the store has it. */
  private segmentOf(key: number): Segment | undefined {
    const segment = this.segments[this.segmentIndexAtOrBelow(key)];
    return segment !== undefined && key <= segment.maxKey ? segment : undefined;
  }

  /** The segment a body of `key` and `size` bytes is written to: a new one once the newest is full. */
  private segmentForWrite(key: number, size: number): Segment {
    const newest = this.segments[this.segments.length - 1];
    let segment: Segment;
    if (newest === undefined) segment = this.addSegment(key);
    else if (key > newest.maxKey && newest.maxKey >= 0 && newest.bytes >= this.segmentBytes) segment = this.addSegment(key);
    else segment = this.segments[this.segmentIndexAtOrBelow(key)] ?? this.addSegment(key);
    if (key > segment.maxKey) segment.maxKey = key;
    segment.bytes += size;
    return segment;
  }

  private get segmentBytes(): number {
    return this.options.segmentBytes ?? SEGMENT_BYTES;
  }

  /** Segments on disk (or being opened). */
  get segmentCount(): number {
    return this.segments.length;
  }

  /** Stores bodies under their keys (a key stored again gets the same bytes: replays after a restart do that). */
  put(bodies: readonly StoredBody[]): void {
    this.queue(bodies, false);
  }

  private queue(bodies: readonly StoredBody[], applied: boolean): void {
    if (bodies.length === 0) return;
    for (const b of bodies) {
      this.pending.set(b.key, b.bytes);
      this.queued.push({ body: b, applied });
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.writeQueued());
    }
  }

  /**
   * Stores the bodies of an entry just applied. The state machine hands out keys in apply order,
   * so the store remembers the highest one written: when a restarted node applies again the
   * entries after its snapshot, bodies it wrote before it stopped are not written again.
   */
  putApplied(bodies: readonly StoredBody[]): void {
    const first = bodies[0];
    if (first === undefined) return;
    if (first.key <= this.appliedAtOpen) {
      const fresh = bodies.filter((b) => b.key > this.appliedAtOpen);
      this.skipped += bodies.length - fresh.length;
      this.queue(fresh, true);
    } else {
      this.queue(bodies, true);
    }
  }

  /** The body stored under `key`, `size` bytes long; empty bodies are never stored. */
  read(key: number, size: number): Uint8Array {
    if (size === 0) return new Uint8Array(0);
    const held = this.pending.get(key);
    if (held !== undefined) return held;
    const keyBytes = bodyKeyBytes(key);
    const value = this.getStored(key, keyBytes);
    if (value === undefined) throw new BodyMissingError(key, this.dir);
    return this.check(key, keyBytes, value);
  }

  private getStored(key: number, keyBytes: Uint8Array): Uint8Array | undefined {
    const segment = this.segmentOf(key);
    // A segment still opening has no write landed: what it will hold is pending.
    if (segment === undefined || segment.db.status !== "open") return undefined;
    return segment.db.getSync(keyBytes);
  }

  /** Whether the store holds the body (pending or written). */
  has(key: number): boolean {
    return this.pending.has(key) || this.getStored(key, bodyKeyBytes(key)) !== undefined;
  }

  /** Bodies of `keys`, for a peer that lacks them: null where this store has none. */
  readMany(keys: readonly number[]): (Uint8Array | null)[] {
    return keys.map((key) => {
      const held = this.pending.get(key);
      if (held !== undefined) return held;
      const keyBytes = bodyKeyBytes(key);
      const value = this.getStored(key, keyBytes);
      return value === undefined ? null : this.check(key, keyBytes, value);
    });
  }

  /**
   * Bodies of `keys`, read off the event loop (LevelDB's getMany runs on the thread pool): null
   * where the store has none; a damaged one rejects with CorruptionError.
   */
  async readManyAsync(keys: readonly number[]): Promise<(Uint8Array | null)[]> {
    const keyBytes = keys.map(bodyKeyBytes);
    const values: (Uint8Array | undefined)[] = new Array(keys.length);
    const bySegment = new Map<Segment, number[]>();
    keys.forEach((key, i) => {
      const segment = this.segmentOf(key);
      if (segment === undefined) return;
      const at = bySegment.get(segment);
      if (at === undefined) bySegment.set(segment, [i]);
      else at.push(i);
    });
    await Promise.all(
      [...bySegment].map(async ([segment, at]) => {
        await segment.opened;
        if (segment.db.status !== "open") return;
        const got = await segment.db.getMany(at.map((i) => keyBytes[i] as Uint8Array));
        at.forEach((i, j) => {
          values[i] = got[j];
        });
      }),
    );
    return keys.map((key, i) => {
      const held = this.pending.get(key);
      if (held !== undefined) return held;
      const value = values[i];
      return value === undefined ? null : this.check(key, keyBytes[i] as Uint8Array, value);
    });
  }

  /** A value read from a segment: its body, once its checksum holds. */
  private check(key: number, keyBytes: Uint8Array, value: Uint8Array): Uint8Array {
    this.readBytes += value.length;
    const bodyLength = value.length - CRC_BYTES;
    if (bodyLength < 0) throw new CorruptionError(`message body ${key}`, this.dir, `a value of ${value.length} bytes is shorter than its checksum`);
    const body = value.subarray(0, bodyLength);
    const stored = new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(bodyLength);
    if (stored !== crc32c(body, crc32c(keyBytes))) throw new CorruptionError(`message body ${key}`, this.dir, "checksum mismatch");
    return body;
  }

  /** Resolves once every body put before this call is on disk, synced. */
  sync(): Promise<void> {
    this.writeQueued();
    return this.enqueue(async () => {
      for (const segment of this.segments) if (segment.unsynced) await this.syncSegment(segment);
    });
  }

  private async syncSegment(segment: Segment): Promise<void> {
    await segment.db.put(SYNC_MARK_KEY, SYNC_MARK_VALUE, { sync: true });
    segment.unsynced = false;
  }

  /**
   * Records, behind every write, delete and drop queued before it, that the store holds exactly
   * the bodies below `frontier` that the snapshot with that frontier refers to (the body keeper
   * deleted the others and found none missing). The segments deleted from are synced first, so
   * the record never outlives a delete queued before it.
   */
  markMatched(frontier: number): Promise<void> {
    this.writeQueued();
    return this.enqueue(async () => {
      for (const segment of this.segments) {
        if (!segment.deletedSinceMark) continue;
        await this.syncSegment(segment);
        segment.deletedSinceMark = false;
      }
      await this.meta.put(MATCHED_KEY, bodyKeyBytes(frontier));
    });
  }

  /** The frontier of the last markMatched() that reached the store, if any. */
  matchedAt(): number | undefined {
    const value = this.meta.getSync(MATCHED_KEY);
    return value === undefined || value.length !== KEY_BYTES ? undefined : keyOfBytes(value);
  }

  /**
   * Drops every segment but the newest that holds no key of `live` (ascending, non-touching
   * [from, to) pairs, as LiveBodies.ranges) and no key at or above `frontier`: none of its bodies
   * is referred to, and none will be, since a key is never handed out twice. Answers how many.
   */
  dropSegmentsWithout(live: Float64Array, frontier: number): number {
    let count = 0;
    for (let i = this.segments.length - 2; i >= 0; i--) {
      const segment = this.segments[i] as Segment;
      if (segment.maxKey >= frontier) continue;
      const r = firstRangeEndingAfter(live, segment.start);
      if (2 * r < live.length && (live[2 * r] as number) <= segment.maxKey) continue;
      this.segments.splice(i, 1);
      this.drop(segment);
      count++;
    }
    return count;
  }

  /** Closes a segment behind what was queued for it, then renames, syncs and removes its folder. */
  private drop(segment: Segment): void {
    if (this.lastWritten === segment) this.lastWritten = null;
    const compactedBefore = this.compacting;
    const keys = segment.maxKey - segment.start + 1;
    this.enqueue(async () => {
      await compactedBefore;
      await segment.sealing;
      await segment.opened.catch(() => undefined);
      if (segment.db.status === "open") await segment.db.close();
      const gone = `${segment.dir}${DROPPED_SUFFIX}`;
      await rename(segment.dir, gone);
      await syncDir(this.dir);
      await rm(gone, { recursive: true, force: true });
      this.segmentsDropped++;
      this.keysDropped += Math.max(0, keys);
    }).catch(() => undefined);
  }

  /** Deletes the bodies of `keys` (ascending or not), a bounded number per write. */
  remove(keys: ArrayLike<number>): Promise<void> {
    this.writeQueued();
    const bySegment = new Map<Segment, number[]>();
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as number;
      const segment = this.segmentOf(key);
      if (segment === undefined) continue;
      const list = bySegment.get(segment);
      if (list === undefined) bySegment.set(segment, [key]);
      else list.push(key);
    }
    const tasks: Promise<void>[] = [];
    for (const [segment, list] of bySegment) {
      for (let at = 0; at < list.length; at += DELETES_PER_WRITE) {
        const end = Math.min(list.length, at + DELETES_PER_WRITE);
        tasks.push(this.deleteIn(segment, deletes(end - at, (i) => list[at + i] as number), 0));
      }
    }
    // Every key asked for counts, whatever the segments held or dropped before.
    return Promise.all(tasks).then(() => {
      this.deleted += keys.length;
    });
  }

  /** Writes deletes into a segment; `counted` of them add to `deleted` once written. */
  private deleteIn(segment: Segment, ops: Op[], counted: number): Promise<void> {
    return this.enqueue(async () => {
      await segment.opened;
      if (segment.db.status !== "open") return;
      await segment.db.batch(ops);
      segment.deletedSinceMark = true;
      this.deleted += counted;
    });
  }

  /**
   * Deletes every body with a key in [from, to): in each segment it meets, a delete per key it
   * may hold, a bounded number per write, written without reading what is there (LevelDB's own
   * range clear reads every value it deletes). A range of at least COMPACT_MIN_KEYS keys is then
   * compacted, which is what frees its space on disk: a segment's keys only grow, so LevelDB's
   * own compactions seldom reach old ones.
   */
  removeRange(from: number, to: number): Promise<void> {
    if (to <= from) return Promise.resolve();
    this.writeQueued();
    const tasks: Promise<void>[] = [];
    for (let i = Math.max(0, this.segmentIndexAtOrBelow(from)); i < this.segments.length; i++) {
      const segment = this.segments[i] as Segment;
      if (segment.start >= to) break;
      const lo = Math.max(from, segment.start);
      const hi = Math.min(to, segment.maxKey + 1);
      if (hi <= lo) continue;
      const parts: Promise<void>[] = [];
      for (let a = lo; a < hi; a += DELETES_PER_WRITE) {
        const b = Math.min(hi, a + DELETES_PER_WRITE);
        parts.push(this.deleteIn(segment, deletes(b - a, (k) => a + k), 0));
      }
      const done = Promise.all(parts).then(() => undefined);
      if (hi - lo >= COMPACT_MIN_KEYS) void this.compact(segment, done, lo, hi).catch(() => undefined);
      tasks.push(done);
    }
    // A range counts its whole span, whatever of it the segments held or dropped before.
    return Promise.all(tasks).then(() => {
      this.deleted += to - from;
    });
  }

  /**
   * A full segment is written no more: its memtable (up to writeBufferSize of the last bodies)
   * goes to a table, so that sealed segments hold no memory. LevelDB flushes the memtable before
   * compacting any range; the range of its last key alone rewrites little else. It waits for
   * nothing else queued, so that a drop of the segment can wait for it.
   */
  private seal(segment: Segment): void {
    const last = bodyKeyBytes(segment.maxKey);
    segment.sealing = segment.db.compactRange(last, last).catch(() => undefined);
  }

  /**
   * Compacts [from, to) of a segment once `deleted` resolves and the ranges queued before it are
   * compacted; one compaction runs at a time. It is queued at once, so that whenCompacted() and
   * close() wait for it even while its deletes are still being written.
   */
  private compact(segment: Segment, deleted: Promise<void>, from: number, to: number): Promise<void> {
    const run = Promise.all([this.compacting, deleted]).then(async () => {
      if (this.failure !== null || segment.db.status !== "open") return;
      await segment.db.compactRange(bodyKeyBytes(from), bodyKeyBytes(to));
      this.compactions++;
    });
    this.compacting = run.catch(() => undefined);
    return run;
  }

  /** The stored keys below `below`, ascending, a step at a time. */
  async *keys(below: number): AsyncGenerator<number[], void, undefined> {
    for (const segment of [...this.segments]) {
      if (segment.start >= below) return;
      await segment.opened;
      if (segment.db.status !== "open") continue;
      const it = segment.db.keys({ lt: bodyKeyBytes(below) });
      try {
        for (;;) {
          const batch = await it.nextv(KEYS_PER_STEP);
          if (batch.length === 0) break;
          yield batch.map(keyOfBytes);
        }
      } finally {
        await it.close();
      }
    }
  }

  /** Resolves once the deletes and drops queued so far are done, the ranges among them compacted and full segments sealed. */
  async whenCompacted(): Promise<void> {
    await this.tail;
    await this.compacting;
    await Promise.all(this.segments.map((segment) => segment.sealing));
  }

  /** Bytes the store's files take on disk, approximately. */
  async approximateBytes(): Promise<number> {
    const sizes = await Promise.all(
      this.segments.map(async (segment) => {
        await segment.opened;
        return segment.db.status === "open" ? segment.db.approximateSize(bodyKeyBytes(0), MARKS_FROM) : 0;
      }),
    );
    return sizes.reduce((a, b) => a + b, 0);
  }

  /** Writes what was put, waits for every write queued, then closes every database. */
  async close(): Promise<void> {
    this.writeQueued();
    await this.tail.catch(() => undefined);
    await this.compacting;
    await Promise.all(
      this.segments.map(async (segment) => {
        await segment.opened.catch(() => undefined);
        await segment.sealing;
        if (segment.db.status === "open") await segment.db.close();
      }),
    );
    if (this.meta.status === "open") await this.meta.close();
  }

  private writeQueued(): void {
    this.flushScheduled = false;
    const queued = this.queued;
    if (queued.length === 0) return;
    this.queued = [];
    // Consecutive bodies bound for one segment go in one batch, with that segment's applied mark.
    let segment: Segment | null = null;
    let ops: Op[] = [];
    let bodies: StoredBody[] = [];
    let appliedMax = -1;
    const flush = () => {
      if (segment === null) return;
      if (appliedMax > segment.applied) {
        segment.applied = appliedMax;
        ops.push({ type: "put", key: APPLIED_KEY, value: bodyKeyBytes(appliedMax) });
      }
      this.writeBatch(segment, ops, bodies);
      ops = [];
      bodies = [];
      appliedMax = -1;
    };
    for (const { body, applied } of queued) {
      const target = this.segmentForWrite(body.key, body.bytes.length);
      if (target !== segment) {
        flush();
        segment = target;
      }
      const key = bodyKeyBytes(body.key);
      ops.push({ type: "put", key, value: sealed(key, body.bytes) });
      bodies.push(body);
      if (applied && body.key > appliedMax) appliedMax = body.key;
    }
    flush();
  }

  private writeBatch(segment: Segment, ops: Op[], bodies: StoredBody[]): void {
    // Writes reach the disk in order across segments: the segment written before is synced
    // before another is written (once per segment filled, in the common case).
    const before = this.lastWritten;
    this.lastWritten = segment;
    this.enqueue(async () => {
      if (before !== null && before !== segment && before.db.status === "open") {
        if (before.unsynced) await this.syncSegment(before);
        if (before.bytes >= this.segmentBytes) this.seal(before);
      }
      await segment.opened;
      await segment.db.batch(ops);
      segment.unsynced = true;
      for (const b of bodies) {
        if (this.pending.get(b.key) === b.bytes) this.pending.delete(b.key);
        this.writtenBytes += b.bytes.length;
      }
      this.written += bodies.length;
    }).catch(() => undefined);
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.tail.then(async () => {
      if (this.failure !== null) throw this.failure;
      try {
        await task();
      } catch (error) {
        this.fail(error);
        throw this.failure;
      }
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  private fail(error: unknown): void {
    if (this.failure !== null) return;
    this.failure = new StorageFailedError(this.dir, `a body store write failed: ${(error as Error).message}`, { cause: error });
    this.onFailure(this.failure);
  }
}

/** The first range of `ranges` (ascending [from, to) pairs) that ends after k. */
export function firstRangeEndingAfter(ranges: Float64Array, k: number): number {
  let lo = 0;
  let hi = ranges.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ranges[2 * mid + 1] as number) <= k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
