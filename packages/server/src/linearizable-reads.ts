// Linearizable reads (Raft §6.4, ReadIndex): a read waits until the leader has confirmed its
// commit index with a quorum and this node has applied through it.
import type { Cancel, NodeClock } from "./node-clock.ts";
import { NodeUnavailableError } from "./node-errors.ts";

interface ReadWaiter {
  resolve: () => void;
  reject: (error: Error) => void;
  cancelTimer: Cancel;
  index: number;
}

export interface ReadIndexHost {
  /** Asks the core for a read index under `context`. */
  readIndex(context: Uint8Array): void;
  appliedIndex(): number;
  leaderClientAddress(): string;
}

export class LinearizableReads {
  private seq = 0;
  /** Reads waiting for the leader's confirmation, by context. */
  private readonly waiting = new Map<string, ReadWaiter>();
  /** Reads whose index is known, waiting for the state machine to reach it. */
  private readonly awaitingApply: ReadWaiter[] = [];

  constructor(
    private readonly host: ReadIndexHost,
    private readonly clock: NodeClock,
    private readonly timeoutMs: number,
  ) {}

  read(): Promise<void> {
    const context = new Uint8Array(8);
    const seq = ++this.seq;
    new DataView(context.buffer).setFloat64(0, seq);
    const key = String(seq);
    return new Promise((resolve, reject) => {
      const cancelTimer = this.clock.after(this.timeoutMs, () => {
        this.waiting.delete(key);
        reject(new NodeUnavailableError(`the leader did not confirm a read within ${this.timeoutMs} ms`, this.host.leaderClientAddress()));
      });
      this.waiting.set(key, { resolve, reject, cancelTimer, index: 0 });
      try {
        this.host.readIndex(context);
      } catch (err) {
        cancelTimer();
        this.waiting.delete(key);
        reject(err);
      }
    });
  }

  /** Read states of a Ready: each confirmed read is answered now or once its index is applied. */
  confirmed(states: readonly { index: number; context: Uint8Array }[]): void {
    for (const rs of states) {
      const key = String(new DataView(rs.context.buffer, rs.context.byteOffset, rs.context.byteLength).getFloat64(0));
      const waiter = this.waiting.get(key);
      if (waiter === undefined) continue;
      this.waiting.delete(key);
      waiter.index = rs.index;
      if (this.host.appliedIndex() >= rs.index) {
        waiter.cancelTimer();
        waiter.resolve();
      } else {
        this.awaitingApply.push(waiter);
      }
    }
  }

  /** The state machine moved on: answers the reads it has reached. */
  applied(appliedIndex: number): void {
    if (this.awaitingApply.length === 0) return;
    let kept = 0;
    for (const w of this.awaitingApply) {
      if (appliedIndex >= w.index) {
        w.cancelTimer();
        w.resolve();
      } else {
        this.awaitingApply[kept++] = w;
      }
    }
    this.awaitingApply.length = kept;
  }

  failAll(error: Error): void {
    for (const w of this.waiting.values()) {
      w.cancelTimer();
      w.reject(error);
    }
    this.waiting.clear();
    for (const w of this.awaitingApply) {
      w.cancelTimer();
      w.reject(error);
    }
    this.awaitingApply.length = 0;
  }
}
