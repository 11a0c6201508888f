// Message bodies, apart from the Raft log and the state machine: each node stores the body of a
// publish under the key the state machine gave it (BodyRef.key) when it applies the entry, and
// reads it back when it delivers. A LevelDB database of its own (the `bodies` folder of the data
// directory): a body is written once at apply, not synced (the log holds it until the snapshot
// that covers it, and sync() runs before that snapshot is stored), and deleted when no message
// refers to it any more. Each value is the body followed by a CRC-32C of its key and bytes.
//
// Writes go out in the order put() was called, the puts of one turn of the event loop in one
// batch. Until its write lands, a body is served from memory, so a delivery in the same apply as
// its publish reads it.
import { ClassicLevel } from "classic-level";
import { crc32c } from "./crc32c.ts";
import { CorruptionError, StorageFailedError } from "./errors.ts";

/** A body to store: the key the state machine gave it and its bytes. */
export interface StoredBody {
  readonly key: number;
  readonly bytes: Uint8Array;
}

export interface BodyStoreOptions {
  dir: string;
  /** LevelDB's memtable size; 4 MiB (LevelDB's default) unless given. */
  writeBufferSize?: number;
  /** LevelDB's block cache: the bound on the bodies read back that stay in memory. */
  cacheSize?: number;
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
/** Deletes per write when many bodies go at once: the loop's reads and writes go between them. */
const DELETES_PER_WRITE = 4096;
/** Ranges of at least this many keys are compacted once deleted. */
const COMPACT_MIN_KEYS = 4096;
/**
 * Table files LevelDB keeps open (its default is 1,000). LevelDB maps the tables it reads into
 * memory, and what it has read of an open table stays resident: this bounds that to about this
 * many times its 2 MiB table size.
 */
export const BODY_STORE_MAX_OPEN_FILES = 100;
/** Keys read per step when the stored keys are listed. */
const KEYS_PER_STEP = 4096;
/**
 * A record written with sync to sync the store: LevelDB syncs its log up to a synced write, and
 * skips a write of nothing. One byte, after every 8-byte body key.
 */
const SYNC_MARK_KEY = Uint8Array.of(0xff);
const SYNC_MARK_VALUE = new Uint8Array(0);
/** Where markMatched() keeps its frontier: one byte, after every body key, before the sync mark. */
const MATCHED_KEY = Uint8Array.of(0xfe);
/**
 * The highest key put by putApplied() whose write has landed: written in the same batch as the
 * bodies, so that LevelDB's in-order recovery after a crash keeps it only with every body put
 * before it.
 */
const APPLIED_KEY = Uint8Array.of(0xfd);

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

type Op = { type: "put"; key: Uint8Array; value: Uint8Array } | { type: "del"; key: Uint8Array };

export class BodyStore {
  /** Bodies handed to put() whose write has not landed yet. */
  private readonly pending = new Map<number, Uint8Array>();
  /** Puts of this turn, in put() order, not yet handed to a write. */
  private queued: StoredBody[] = [];
  /** The highest key among the queued puts that came from putApplied(); -1 if none. */
  private queuedApplied = -1;
  /** The highest key putApplied() has handed to a write. */
  private appliedThrough: number;
  /** Bodies putApplied() left out because the store held them when it opened. */
  skipped = 0;
  private flushScheduled = false;
  private tail: Promise<void> = Promise.resolve();
  private compacting: Promise<void> = Promise.resolve();
  private failure: Error | null = null;
  /** Bodies written, and keys deleted (one by one, or the span of a range cleared), since the store opened. */
  written = 0;
  writtenBytes = 0;
  deleted = 0;
  /** Ranges compacted after they were deleted. */
  compactions = 0;

  private constructor(
    private readonly db: ClassicLevel<Uint8Array, Uint8Array>,
    readonly dir: string,
    /** Called once, with the first failed write: the node cannot go on without its bodies. */
    private readonly onFailure: (error: Error) => void,
    /** The highest key putApplied() had written when the store opened; -1 if none. */
    readonly appliedAtOpen: number,
  ) {
    this.appliedThrough = appliedAtOpen;
  }

  static async open(options: BodyStoreOptions, onFailure: (error: Error) => void): Promise<BodyStore> {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(options.dir, {
      keyEncoding: "view",
      valueEncoding: "view",
      writeBufferSize: options.writeBufferSize ?? 4 * 1024 * 1024,
      cacheSize: options.cacheSize ?? 8 * 1024 * 1024,
      maxOpenFiles: BODY_STORE_MAX_OPEN_FILES,
    });
    try {
      await db.open();
    } catch (error) {
      throw new StorageFailedError(options.dir, `the body store did not open: ${(error as Error).message}`, { cause: error });
    }
    let appliedAtOpen = -1;
    try {
      const value = db.getSync(APPLIED_KEY);
      if (value !== undefined) {
        if (value.length !== KEY_BYTES) throw new CorruptionError("body store's applied mark", options.dir, `a value of ${value.length} bytes, not ${KEY_BYTES}`);
        appliedAtOpen = keyOfBytes(value);
      }
    } catch (error) {
      await db.close().catch(() => undefined);
      throw error instanceof CorruptionError ? error : new StorageFailedError(options.dir, `the body store did not open: ${(error as Error).message}`, { cause: error });
    }
    return new BodyStore(db, options.dir, onFailure, appliedAtOpen);
  }

  /** Stores bodies under their keys (a key stored again gets the same bytes: replays after a restart do that). */
  put(bodies: readonly StoredBody[]): void {
    if (bodies.length === 0) return;
    for (const b of bodies) {
      this.pending.set(b.key, b.bytes);
      this.queued.push(b);
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
    const last = bodies[bodies.length - 1];
    if (first === undefined || last === undefined) return;
    if (first.key <= this.appliedAtOpen) {
      const fresh = bodies.filter((b) => b.key > this.appliedAtOpen);
      this.skipped += bodies.length - fresh.length;
      if (fresh.length === 0) return;
      this.put(fresh);
    } else {
      this.put(bodies);
    }
    if (last.key > this.queuedApplied) this.queuedApplied = last.key;
  }

  /** The body stored under `key`, `size` bytes long; empty bodies are never stored. */
  read(key: number, size: number): Uint8Array {
    if (size === 0) return new Uint8Array(0);
    const held = this.pending.get(key);
    if (held !== undefined) return held;
    const keyBytes = bodyKeyBytes(key);
    const value = this.db.getSync(keyBytes);
    if (value === undefined) throw new BodyMissingError(key, this.dir);
    return this.check(key, keyBytes, value);
  }

  /** Whether the store holds the body (pending or written). */
  has(key: number): boolean {
    return this.pending.has(key) || this.db.getSync(bodyKeyBytes(key)) !== undefined;
  }

  /** Bodies of `keys`, for a peer that lacks them: null where this store has none. */
  readMany(keys: readonly number[]): (Uint8Array | null)[] {
    return keys.map((key) => {
      const held = this.pending.get(key);
      if (held !== undefined) return held;
      const keyBytes = bodyKeyBytes(key);
      const value = this.db.getSync(keyBytes);
      return value === undefined ? null : this.check(key, keyBytes, value);
    });
  }

  /**
   * Bodies of `keys`, read off the event loop (LevelDB's getMany runs on the thread pool): null
   * where the store has none; a damaged one rejects with CorruptionError.
   */
  async readManyAsync(keys: readonly number[]): Promise<(Uint8Array | null)[]> {
    const keyBytes = keys.map(bodyKeyBytes);
    const values = await this.db.getMany(keyBytes);
    return keys.map((key, i) => {
      const held = this.pending.get(key);
      if (held !== undefined) return held;
      const value = values[i];
      return value === undefined ? null : this.check(key, keyBytes[i] as Uint8Array, value);
    });
  }

  private check(key: number, keyBytes: Uint8Array, value: Uint8Array): Uint8Array {
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
    return this.enqueue(() => this.db.put(SYNC_MARK_KEY, SYNC_MARK_VALUE, { sync: true }));
  }

  /**
   * Records, behind every write and delete queued before it, that the store holds exactly the
   * bodies below `frontier` that the snapshot with that frontier refers to (the body keeper
   * deleted the others and found none missing). LevelDB replays its log in order after a
   * crash, so the record never outlives a delete queued before it.
   */
  markMatched(frontier: number): Promise<void> {
    this.writeQueued();
    return this.enqueue(() => this.db.put(MATCHED_KEY, bodyKeyBytes(frontier)));
  }

  /** The frontier of the last markMatched() that reached the store, if any. */
  matchedAt(): number | undefined {
    const value = this.db.getSync(MATCHED_KEY);
    return value === undefined || value.length !== KEY_BYTES ? undefined : keyOfBytes(value);
  }

  /** Deletes the bodies of `keys` (ascending or not), a bounded number per write. */
  remove(keys: ArrayLike<number>): Promise<void> {
    this.writeQueued();
    const tasks: Promise<void>[] = [];
    for (let at = 0; at < keys.length; at += DELETES_PER_WRITE) {
      const end = Math.min(keys.length, at + DELETES_PER_WRITE);
      const ops = deletes(end - at, (i) => keys[at + i] as number);
      tasks.push(
        this.enqueue(async () => {
          await this.db.batch(ops);
          this.deleted += ops.length;
        }),
      );
    }
    return Promise.all(tasks).then(() => undefined);
  }

  /**
   * Deletes every body with a key in [from, to): a delete per key, a bounded number per write,
   * written without reading what is there (LevelDB's own range clear reads every value it
   * deletes). A range of at least COMPACT_MIN_KEYS keys is then compacted, which is what frees
   * its space on disk: a body store's keys only grow, so LevelDB's own compactions seldom reach
   * old ones.
   */
  removeRange(from: number, to: number): Promise<void> {
    if (to <= from) return Promise.resolve();
    this.writeQueued();
    const tasks: Promise<void>[] = [];
    for (let lo = from; lo < to; lo += DELETES_PER_WRITE) {
      const hi = Math.min(to, lo + DELETES_PER_WRITE);
      tasks.push(
        this.enqueue(async () => {
          await this.db.batch(deletes(hi - lo, (i) => lo + i));
          this.deleted += hi - lo;
        }),
      );
    }
    const done = Promise.all(tasks).then(() => undefined);
    if (to - from >= COMPACT_MIN_KEYS) void this.compact(done, from, to).catch(() => undefined);
    return done;
  }

  /**
   * Compacts [from, to) once `deleted` resolves and the ranges queued before it are compacted;
   * one compaction runs at a time. It is queued at once, so that whenCompacted() and close()
   * wait for it even while its deletes are still being written.
   */
  private compact(deleted: Promise<void>, from: number, to: number): Promise<void> {
    const run = Promise.all([this.compacting, deleted]).then(async () => {
      if (this.failure !== null || this.db.status !== "open") return;
      await this.db.compactRange(bodyKeyBytes(from), bodyKeyBytes(to));
      this.compactions++;
    });
    this.compacting = run.catch(() => undefined);
    return run;
  }

  /** The stored keys below `below`, ascending, a step at a time. */
  async *keys(below: number): AsyncGenerator<number[], void, undefined> {
    const it = this.db.keys({ lt: bodyKeyBytes(below) });
    try {
      for (;;) {
        const batch = await it.nextv(KEYS_PER_STEP);
        if (batch.length === 0) return;
        yield batch.map(keyOfBytes);
      }
    } finally {
      await it.close();
    }
  }

  /** Resolves once the deletes queued so far are written and the ranges among them compacted. */
  async whenCompacted(): Promise<void> {
    await this.tail;
    await this.compacting;
  }

  /** Bytes the store's files take on disk, approximately. */
  async approximateBytes(): Promise<number> {
    return this.db.approximateSize(bodyKeyBytes(0), bodyKeyBytes(Number.MAX_SAFE_INTEGER));
  }

  /** Writes what was put, waits for every write queued, then closes the database. */
  async close(): Promise<void> {
    this.writeQueued();
    await this.tail.catch(() => undefined);
    await this.compacting;
    if (this.db.status === "open") await this.db.close();
  }

  private writeQueued(): void {
    this.flushScheduled = false;
    const bodies = this.queued;
    if (bodies.length === 0) return;
    this.queued = [];
    const ops: Op[] = bodies.map((b) => {
      const key = bodyKeyBytes(b.key);
      return { type: "put", key, value: sealed(key, b.bytes) };
    });
    if (this.queuedApplied > this.appliedThrough) {
      this.appliedThrough = this.queuedApplied;
      ops.push({ type: "put", key: APPLIED_KEY, value: bodyKeyBytes(this.appliedThrough) });
    }
    this.enqueue(async () => {
      await this.db.batch(ops);
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
