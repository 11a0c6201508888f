// A node's disk as power loss sees it: what was written is visible to the running process at
// once, but only what was synced survives the power going off. A write that was not synced yet
// is lost whole, or (a torn write) only a prefix of it reaches the platters.
import { type ConfState, type Entry, type HardState, MemoryStorage, type Snapshot } from "@raftmq/raft";

/** One write's parts in the order they reach the disk: a torn write keeps a prefix of them. */
export type DiskOp =
  | { readonly kind: "snapshot"; readonly snapshot: Snapshot }
  | { readonly kind: "entry"; readonly entry: Entry }
  | { readonly kind: "hardState"; readonly hardState: HardState };

export interface DiskWrite {
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
}

/** What a power loss did to the write in flight, if any. */
export interface PowerLossDamage {
  /** Parts of the unsynced write. */
  readonly unsyncedOps: number;
  /** Parts of it that survived (a torn write); 0 when it was lost whole. */
  readonly keptOps: number;
}

export class DiskError extends Error {
  override name = "DiskError";
}

export class SimDisk {
  /** What survives a power loss. */
  readonly #durable = new MemoryStorage();
  /** What the running process reads: the durable state plus the write in flight. */
  #live: MemoryStorage | null = null;
  /** Writes not synced yet, oldest first; they reach the disk in this order. */
  #unsynced: DiskOp[][] = [];
  writes = 0;
  syncs = 0;

  constructor(
    /** Writes in flight at once: 1 for a node that waits for each sync before it writes again. */
    private readonly maxUnsyncedWrites = 1,
  ) {
    if (!(Number.isInteger(maxUnsyncedWrites) && maxUnsyncedWrites >= 1)) throw new DiskError(`maxUnsyncedWrites must be >= 1, got ${maxUnsyncedWrites}`);
  }

  /** Powers on: the process sees exactly what was synced. */
  open(): MemoryStorage {
    if (this.#live !== null) throw new DiskError("disk opened twice without a power loss");
    this.#live = copyOf(this.#durable);
    return this.#live;
  }

  get hasUnsynced(): boolean {
    return this.#unsynced.length > 0;
  }

  /** Writes without syncing: the process reads it back, a power loss may drop it. */
  write(w: DiskWrite): void {
    const live = this.#liveStorage();
    if (this.#unsynced.length >= this.maxUnsyncedWrites) {
      throw new DiskError(`a write was issued with ${this.#unsynced.length} not synced (limit ${this.maxUnsyncedWrites})`);
    }
    const ops = opsOf(w);
    for (const op of ops) applyOp(live, op);
    this.#unsynced.push(ops);
    this.writes++;
  }

  /** The oldest write in flight is now durable. */
  sync(): void {
    const ops = this.#unsynced.shift();
    if (ops === undefined) throw new DiskError("sync without a write");
    for (const op of ops) applyOp(this.#durable, op);
    this.syncs++;
  }

  /** Every write in flight is now durable. */
  syncAll(): void {
    while (this.#unsynced.length > 0) this.sync();
  }

  /** Writes in flight. */
  get unsyncedWrites(): number {
    return this.#unsynced.length;
  }

  /** A write and its sync in one step, for work done between cycles (snapshots). */
  writeSynced(w: DiskWrite): void {
    this.write(w);
    this.sync();
  }

  /** Records a snapshot of the state machine at `index` and drops the log up to `compactTo`; synced. */
  snapshotAndCompact(index: number, confState: ConfState, data: Uint8Array, compactTo: number): void {
    const live = this.#liveStorage();
    if (this.#unsynced.length > 0) throw new DiskError("snapshot taken while a write is in flight");
    // As RaftStorage: a restart must not find a snapshot above the stored commit index.
    const commit = this.#durable.initialState().hardState.commit;
    if (index > commit) throw new DiskError(`snapshot at ${index} is past the stored commit index ${commit}`);
    for (const storage of [live, this.#durable]) {
      storage.createSnapshot(index, confState, data);
      if (compactTo > storage.firstIndex()) storage.compact(compactTo);
    }
  }

  /**
   * The power goes off: the process's view is gone and the writes in flight are lost, except for
   * their first `keepOps` parts (in write order) when the write tore.
   */
  powerLoss(keepOps: number): PowerLossDamage {
    const ops = this.#unsynced.flat();
    if (!(Number.isInteger(keepOps) && keepOps >= 0 && keepOps <= ops.length)) {
      throw new DiskError(`a torn write keeps 0..${ops.length} parts, not ${keepOps}`);
    }
    for (const op of ops.slice(0, keepOps)) applyOp(this.#durable, op);
    this.#unsynced = [];
    this.#live = null;
    return { unsyncedOps: ops.length, keptOps: keepOps };
  }

  /** Parts of the write in flight: the bound for a torn write's prefix. */
  unsyncedOps(): number {
    let n = 0;
    for (const ops of this.#unsynced) n += ops.length;
    return n;
  }

  durableLastIndex(): number {
    return this.#durable.lastIndex();
  }

  durableHardState(): HardState {
    return this.#durable.initialState().hardState;
  }

  #liveStorage(): MemoryStorage {
    if (this.#live === null) throw new DiskError("the disk is not open (the node is powered off)");
    return this.#live;
  }
}

/** Snapshot first, then the entries in index order, then the hard state that may point into them. */
function opsOf(w: DiskWrite): DiskOp[] {
  const ops: DiskOp[] = [];
  if (w.snapshot !== null) ops.push({ kind: "snapshot", snapshot: w.snapshot });
  for (const entry of w.entries) ops.push({ kind: "entry", entry });
  if (w.hardState !== null) ops.push({ kind: "hardState", hardState: w.hardState });
  return ops;
}

function applyOp(storage: MemoryStorage, op: DiskOp): void {
  switch (op.kind) {
    case "snapshot":
      storage.applySnapshot(op.snapshot);
      return;
    case "entry":
      // Appending one entry drops whatever the log held at and after its index, like the batch would.
      storage.append([op.entry]);
      return;
    case "hardState":
      storage.setHardState(op.hardState);
      return;
    default: {
      const never: never = op;
      throw new DiskError(`unknown disk op ${JSON.stringify(never)}`);
    }
  }
}

/** A fresh storage holding what `from` holds (entries kept behind its snapshot are not carried). */
function copyOf(from: MemoryStorage): MemoryStorage {
  const to = new MemoryStorage();
  const snapshot = from.snapshot();
  if (snapshot.meta.index > 0) to.applySnapshot(snapshot);
  const lo = Math.max(from.firstIndex(), snapshot.meta.index + 1);
  const hi = from.lastIndex() + 1;
  if (lo < hi) to.append(from.entries(lo, hi, Number.POSITIVE_INFINITY));
  to.setHardState(from.initialState().hardState);
  return to;
}
