// ReadIndex bookkeeping on the leader: each request remembers the commit index when it arrived
// and which voters have answered the heartbeat round that carried its context. A quorum of
// answers confirms the leader was still the leader, so reads at that index are linearizable.

export interface ReadRequest {
  index: number;
  /** The node that asked (the leader itself for local reads). */
  from: number;
  context: Uint8Array;
  key: string;
  acks: Map<number, boolean>;
}

export function contextKey(context: Uint8Array): string {
  let key = "";
  for (const byte of context) key += byte.toString(16).padStart(2, "0");
  return key;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadRequest>();
  // Arrival order: acknowledging a later request confirms all earlier ones too.
  private queue: string[] = [];

  constructor(readonly maxPending: number) {}

  get size(): number {
    return this.queue.length;
  }

  /** False when the request is a duplicate or the queue is full. */
  add(index: number, from: number, context: Uint8Array): boolean {
    const key = contextKey(context);
    if (this.pending.has(key) || this.queue.length >= this.maxPending) return false;
    this.pending.set(key, { index, from, context, key, acks: new Map() });
    this.queue.push(key);
    return true;
  }

  /** Records a heartbeat answer; returns the request's acks, or null for an unknown context. */
  recvAck(from: number, context: Uint8Array): ReadonlyMap<number, boolean> | null {
    const request = this.pending.get(contextKey(context));
    if (request === undefined) return null;
    request.acks.set(from, true);
    return request.acks;
  }

  /** Removes and returns the requests up to and including the one for `context`. */
  advance(context: Uint8Array): ReadRequest[] {
    const key = contextKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done: ReadRequest[] = [];
    for (const k of this.queue.slice(0, at + 1)) {
      const request = this.pending.get(k);
      if (request !== undefined) done.push(request);
      this.pending.delete(k);
    }
    this.queue = this.queue.slice(at + 1);
    return done;
  }

  lastContext(): Uint8Array | null {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? null : (this.pending.get(key)?.context ?? null);
  }

  reset(): void {
    this.pending.clear();
    this.queue = [];
  }
}
