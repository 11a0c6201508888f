// Snapshots this node takes of its own state: when one is due (SnapshotPolicy) or asked for, the
// state is captured at one index between cycles, encoded a slice at a time while the loop goes on,
// and stored with the log compacted below it.
import type { LiveBodies } from "@raftmq/broker";
import type { ConfState } from "@raftmq/raft";
import type { RaftStorage } from "@raftmq/storage";
import type { Logger } from "pino";
import { type NodeClock, yieldTo } from "./node-clock.ts";
import type { NodeMetrics } from "./node-metrics.ts";
import type { SnapshotCapture } from "./node-state.ts";
import type { SnapshotPolicy } from "./snapshot-policy.ts";

/** The node around the snapshots: where its state stands and how to capture it. */
export interface SnapshotHost {
  appliedIndex(): number;
  /** False mid-cycle: the state machine, the core's membership and the stored log may disagree. */
  betweenCycles(): boolean;
  /** The state, the core's membership and the bodies the state refers to at the applied index, captured synchronously. */
  capture(): { confState: ConfState; capture: SnapshotCapture; bodies: LiveBodies };
  /** Writes the hard state not written yet: on restart the stored commit index must not be below the snapshot. */
  persistHardState(): Promise<void>;
  /** Resolves once the bodies of every entry applied so far are synced to disk: the log below the snapshot goes. */
  bodiesDurable(): Promise<void>;
  /** The snapshot referring to `bodies` is stored: bodies it does not refer to may go. */
  stored(bodies: LiveBodies): void;
  /** Storing a snapshot failed: the node must stop. */
  fail(error: Error): void;
}

export interface LocalSnapshotOptions {
  host: SnapshotHost;
  storage: Pick<RaftStorage, "createSnapshot" | "firstIndex" | "lastIndex">;
  policy: SnapshotPolicy;
  clock: NodeClock;
  log: Logger;
  metrics: NodeMetrics | undefined;
  /** Longest stretch of encoding before yielding to I/O. */
  sliceMs: number;
  /** The index of the snapshot the node started from. */
  index: number;
}

export class LocalSnapshots {
  /** Index of the newest snapshot stored or restored. */
  index: number;
  private readonly o: LocalSnapshotOptions;
  private writing: Promise<void> | null = null;
  private encoding = false;
  private waiters: { resolve: (index: number) => void; reject: (error: Error) => void }[] = [];

  constructor(options: LocalSnapshotOptions) {
    this.o = options;
    this.index = options.index;
  }

  /** True while a captured snapshot's pieces are being encoded (applying goes on meanwhile). */
  get encodingPieces(): boolean {
    return this.encoding;
  }

  /** Resolves once no snapshot is being written (a received snapshot must not replace one mid-write). */
  async settled(): Promise<void> {
    if (this.writing !== null) await this.writing.catch(() => undefined);
  }

  /** A snapshot was asked for; it starts at the next chance between cycles and resolves to its index. */
  request(): Promise<number> {
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** The state was replaced by a received snapshot. */
  restored(index: number, bytes: number): void {
    this.index = index;
    this.o.policy.restored(bytes);
  }

  failWaiters(error: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(error);
  }

  /** Starts a snapshot when one is due or was asked for; does nothing mid-cycle or while one is being written. */
  maybeStart(): void {
    const { host, policy } = this.o;
    if (this.writing !== null || !host.betweenCycles()) return;
    const applied = host.appliedIndex();
    if (this.waiters.length === 0 && !policy.due(applied - this.index)) return;
    const waiters = this.waiters;
    this.waiters = [];
    if (applied <= this.index) {
      for (const w of waiters) w.resolve(this.index);
      return;
    }
    this.take().then(
      () => {
        for (const w of waiters) w.resolve(this.index);
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        for (const w of waiters) w.reject(error);
        host.fail(error);
      },
    );
  }

  private take(): Promise<void> {
    const { host, storage, policy, clock, log, metrics, sliceMs } = this.o;
    const index = host.appliedIndex();
    if (index > storage.lastIndex()) throw new Error(`snapshot started mid-cycle (applied ${index}, stored ${storage.lastIndex()})`);
    const started = performance.now();
    const keepEntries = policy.captured();
    const { confState, capture, bodies } = host.capture();
    this.encoding = true;
    const work = (async () => {
      let data: Uint8Array;
      try {
        const pieces: Uint8Array[] = [];
        let sliceStart = clock.elapsed();
        for (const piece of capture.pieces) {
          pieces.push(piece);
          if (clock.elapsed() - sliceStart > sliceMs) {
            await yieldTo(clock);
            sliceStart = clock.elapsed();
          }
        }
        data = capture.assemble(pieces);
      } finally {
        this.encoding = false;
      }
      const encoded = performance.now();
      await host.persistHardState();
      await host.bodiesDurable();
      await storage.createSnapshot(index, confState, data, keepEntries);
      host.stored(bodies);
      policy.stored(data.length);
      this.index = index;
      metrics?.snapshotSeconds.observe((performance.now() - started) / 1000);
      log.info(
        { event: "snapshot", index, bytes: data.length, keptEntries: keepEntries, logStart: storage.firstIndex(), encodeMs: Math.round(encoded - started), ms: Math.round(performance.now() - started) },
        "snapshot taken",
      );
    })();
    this.writing = work.finally(() => {
      this.writing = null;
    });
    return this.writing;
  }
}
