// The node loop: turns each Ready into send, persist, send-after-sync, restore/apply, advance,
// over injected storage, transport, clock and host. Production runs it on LevelDB, grpc-js and
// real timers; the simulators run the same loop on their simulated disk, network and clock. It
// knows nothing of Raft's rules beyond the Ready's contract: which messages wait for the disk is
// the core's decision (Ready.messagesAfterPersist). While a write is in flight it still applies
// what commits and is on disk, and sends a leader's new appends (workWhileWriting): one write at
// a time, but neither commits nor replication wait for it.
import type { RaftNode } from "./raft-node.ts";
import type { Entry, HardState, Message, ReadState, Ready, Snapshot, SoftState } from "./types.ts";

/** One write of a Ready: synced as a whole before `done` is called. */
export interface LoopWrite {
  hardState: HardState | null;
  entries: Entry[];
  snapshot: Snapshot | null;
}

export interface LoopStorage {
  /** The last index of the stored log: entries up to it are on disk. */
  lastIndex(): number;
  /** Starts a write; `done` is called once it is synced, or with the error that stopped it. */
  write(write: LoopWrite, done: (error: Error | null) => void): void;
}

export interface LoopTransport {
  send(messages: Message[]): void;
}

export interface LoopClock {
  /** Milliseconds, for slicing long applies. */
  now(): number;
  /** Runs `fn` later, after pending I/O has had a turn. */
  defer(fn: () => void): void;
}

/** What the node around the loop does with a Ready's contents. */
export interface LoopHost {
  /** Before each Ready is asked for: a leader hands its queued proposals to the core here. */
  beforeReady(): void;
  /**
   * While a cycle waits for its write: a leader may hand the core what was queued since, whose
   * appends then leave at once (followers write them while this node finishes its write).
   */
  proposeWhileWriting(): void;
  softState(state: SoftState): void;
  /** Before anything of the Ready leaves: a member joining in it must be reachable first. */
  beforeSend(ready: Ready): void;
  /** Applies one committed entry; entries at or below the applied index are skipped by the host. */
  apply(entry: Entry): void;
  /** Installs a snapshot's state; `done` once the state machine stands at its index. */
  restore(snapshot: Snapshot, done: () => void): void;
  readStates(states: ReadState[]): void;
  /** After advance, between cycles: nothing handed out is waiting to be applied. */
  afterCycle(): void;
  /** The loop stopped on an error (a failed write, a broken invariant). */
  fail(error: Error): void;
}

/**
 * Deliberate bugs, for simulations to prove that their checkers catch what each does. Never set
 * in a running node.
 */
export interface LoopFaults {
  /** Take a write as done once issued: ack, vote, count and confirm before the data is durable. */
  ackBeforeSync?: boolean;
  /** Send everything at once, acks and votes too, before the write they vouch for is synced. */
  sendBeforeSync?: boolean;
}

export interface ReadyLoopOptions {
  raft: RaftNode;
  storage: LoopStorage;
  transport: LoopTransport;
  clock: LoopClock;
  host: LoopHost;
  /** Longest stretch of applying before the loop yields to I/O. */
  applySliceMs: number;
  faults?: LoopFaults;
}

export class ReadyLoop {
  private readonly raft: RaftNode;
  private readonly storage: LoopStorage;
  private readonly transport: LoopTransport;
  private readonly clock: LoopClock;
  private readonly host: LoopHost;
  private readonly applySliceMs: number;
  private readonly faults: LoopFaults;
  private running = false;
  private again = false;
  private stopped = false;
  private cycling = false;
  /** A cycle waits for its write with everything it handed out applied: kicks run workWhileWriting(). */
  private writing = false;
  private whileWritingScheduled = false;
  /** The latest hard state handed out and not written yet: a new commit index alone rides along with the next write. */
  private unsavedHardState: HardState | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(options: ReadyLoopOptions) {
    this.raft = options.raft;
    this.storage = options.storage;
    this.transport = options.transport;
    this.clock = options.clock;
    this.host = options.host;
    this.applySliceMs = options.applySliceMs;
    this.faults = options.faults ?? {};
  }

  /** True from ready() until the end of applying its committed entries. */
  get inCycle(): boolean {
    return this.cycling;
  }

  get busy(): boolean {
    return this.running;
  }

  /** Schedules a pass of the loop; cheap to call often. */
  kick(): void {
    if (this.running) {
      this.again = true;
      if (this.writing && !this.whileWritingScheduled) {
        this.whileWritingScheduled = true;
        this.clock.defer(
          this.guarded(() => {
            this.whileWritingScheduled = false;
            if (this.writing && !this.stopped) this.workWhileWriting();
          }),
        );
      }
      return;
    }
    if (this.stopped) return;
    this.running = true;
    this.clock.defer(() => this.pump());
  }

  /** No new cycle starts; the one in flight finishes its write. */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves once no cycle is in flight. */
  whenIdle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The hard state handed out and not yet written, for a write outside the cycles; cleared. */
  takeUnsavedHardState(): HardState | null {
    const hs = this.unsavedHardState;
    this.unsavedHardState = null;
    return hs;
  }

  // ---- the loop ----

  /** Runs cycles until none is ready or one waits for I/O (it resumes the pump when done). */
  private pump(): void {
    try {
      for (;;) {
        this.again = false;
        if (this.stopped) break;
        this.host.beforeReady();
        if (!this.raft.hasReady()) {
          if (this.again) continue;
          break;
        }
        let returned = false;
        let finished = false;
        this.cycle(this.raft.ready(), () => {
          finished = true;
          if (returned) this.pump();
        });
        returned = true;
        if (!finished) return;
      }
    } catch (err) {
      this.halt(err);
      return;
    }
    this.settle();
  }

  private settle(): void {
    this.running = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private halt(err: unknown): void {
    this.cycling = false;
    this.writing = false;
    this.settle();
    this.host.fail(err instanceof Error ? err : new Error(String(err)));
  }

  /** Runs `step` guarded: an error halts the loop instead of escaping into a timer or a callback. */
  private guarded(step: () => void): () => void {
    return () => {
      try {
        step();
      } catch (err) {
        this.halt(err);
      }
    };
  }

  private cycle(rd: Ready, done: () => void): void {
    this.cycling = true;
    if (rd.softState !== null) this.host.softState(rd.softState);
    this.host.beforeSend(rd);
    if (rd.hardState !== null) this.unsavedHardState = rd.hardState;
    const mustWrite = rd.mustSync || rd.entries.length > 0 || rd.snapshot !== null;
    const { early, afterPersist } = this.split(rd);
    if (early.length > 0) this.transport.send(early);
    const stored = this.storage.lastIndex();
    const committed = rd.committedEntries;
    let applied = 0;
    let synced = !mustWrite;
    let passDone = false;
    let proceeded = false;

    const applyRest = (from: number) => this.applyFrom(committed, from, Number.POSITIVE_INFINITY, () => this.finish(rd, done));
    const afterSync = this.guarded(() => {
      if (this.stopped) {
        this.abandon(done);
      } else {
        if (afterPersist.length > 0) this.transport.send(afterPersist);
        if (rd.snapshot === null) applyRest(applied);
        else this.host.restore(rd.snapshot, this.guarded(() => (this.stopped ? this.abandon(done) : applyRest(0))));
      }
    });
    // Goes on once the write is synced and the pass over stored entries has ended, whichever is last.
    const proceed = () => {
      if (proceeded || !synced || !passDone) return;
      proceeded = true;
      this.writing = false;
      afterSync();
    };

    if (mustWrite) {
      const write: LoopWrite = { hardState: this.takeUnsavedHardState(), entries: rd.entries, snapshot: rd.snapshot };
      this.storage.write(write, (error) => {
        if (error !== null) {
          this.halt(error);
        } else if (!this.faults.ackBeforeSync) {
          synced = true;
          proceed();
        }
      });
      if (this.faults.ackBeforeSync) synced = true;
    }
    if (synced || rd.snapshot !== null) {
      passDone = true;
      proceed();
    } else {
      // Committed entries already in the stored log are applied (and their callers answered)
      // while this write is in flight; the rest wait for it.
      this.applyFrom(committed, 0, stored, (next) => {
        applied = next;
        passDone = true;
        // Everything handed out is applied and the write is still out: entries that commit
        // meanwhile, already on disk, are applied as they commit instead of after the write.
        if (!synced && applied === committed.length && !this.stopped) {
          this.writing = true;
          this.workWhileWriting();
        }
        proceed();
      });
    }
  }

  /** The core's split of the Ready's messages, unless a fault overrides it. */
  private split(rd: Ready): { early: Message[]; afterPersist: Message[] } {
    if (this.faults.sendBeforeSync) return { early: [...rd.messages, ...rd.messagesAfterPersist], afterPersist: [] };
    return { early: rd.messages, afterPersist: rd.messagesAfterPersist };
  }

  /** Applies entries[from..] up to index `through`, yielding to I/O now and then; `then` gets where it stopped. */
  private applyFrom(entries: Entry[], from: number, through: number, then: (next: number) => void): void {
    let i = from;
    const sliceStart = this.clock.now();
    while (i < entries.length) {
      const entry = entries[i] as Entry;
      if (entry.index > through) break;
      i++;
      this.host.apply(entry);
      if (i < entries.length && this.clock.now() - sliceStart > this.applySliceMs) {
        const next = i;
        this.clock.defer(
          this.guarded(() => (this.stopped ? then(next) : this.applyFrom(entries, next, through, then))),
        );
        return;
      }
    }
    then(i);
  }

  private finish(rd: Ready, done: () => void): void {
    this.cycling = false;
    if (!this.stopped) {
      this.host.readStates(rd.readStates);
      this.raft.advance(rd);
      this.host.afterCycle();
    }
    done();
  }

  /**
   * While a cycle waits for its write: applies what commits and is already on disk, and lets a
   * leader propose what was queued and send its appends, so that followers write the next entries
   * while this node writes.
   */
  private workWhileWriting(): void {
    const { entries, hardState } = this.raft.committedWhileWriting();
    for (const entry of entries) this.host.apply(entry);
    // Their commit index rides along with the next write, like any new commit index.
    if (hardState !== null) this.unsavedHardState = hardState;
    this.host.proposeWhileWriting();
    const appends = this.raft.appendsWhileWriting();
    if (appends.length > 0) this.transport.send(appends);
  }

  /** A cycle cut short by stop(): nothing more of it is done. */
  private abandon(done: () => void): void {
    this.cycling = false;
    this.writing = false;
    done();
  }
}
