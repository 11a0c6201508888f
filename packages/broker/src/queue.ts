// A queue's state: ready messages in order, consumers in subscription order, counters.
// Messages returned by consumers go back to their original place at the head: they sit in a
// small sorted stack in front of the ready ring (they always precede it, being taken from the head).
import type { BodyRef, MessageHead, QueuedMessage } from "./broker-message.ts";
import { ReadyRing } from "./ready-ring.ts";
import type { ConsumerRef } from "./effect.ts";
import type { Binding } from "./exchange.ts";
import type { Vhost } from "./vhost.ts";

export type Overflow = "drop-head" | "reject-publish";

export interface QueueArgs {
  messageTtlMs: number | null;
  expiresMs: number | null;
  maxLength: number | null;
  maxLengthBytes: number | null;
  overflow: Overflow;
  deadLetterExchange: string | null;
  deadLetterRoutingKey: string | null;
  deliveryLimit: number | null;
  singleActiveConsumer: boolean;
  queueType: string;
}

export class Consumer {
  /** Unacknowledged deliveries by tag; insertion order is tag order. */
  readonly inflight = new Map<number, QueuedMessage>();
  nextTag = 1;
  /** Cancelled consumers stop receiving but may still settle what they hold. */
  cancelled = false;
  /** Shared by every effect addressed to this consumer. */
  readonly ref: ConsumerRef;

  constructor(
    readonly id: string,
    readonly sessionId: string,
    readonly queue: Queue,
    public prefetch: number,
    readonly noAck: boolean,
    readonly exclusive: boolean,
    readonly tag: string,
  ) {
    this.ref = Object.freeze({ id, sessionId, consumerTag: tag });
  }

  hasCredit(maxUnacked: number): boolean {
    const cap = this.prefetch === 0 ? maxUnacked : Math.min(this.prefetch, maxUnacked);
    return this.noAck || this.inflight.size < cap;
  }
}

export class Queue {
  /** Returned messages, sorted by id descending so the head is at the end (pop is O(1)). */
  readonly returned: QueuedMessage[] = [];
  /** Messages never taken, in order, as columns (ReadyRing): no object per message. */
  readonly ready = new ReadyRing();
  readyBytes = 0;
  unacked = 0;
  unackedBytes = 0;
  /** Active (not cancelled) consumers in subscription order. */
  readonly consumers: Consumer[] = [];
  /** Round-robin position in consumers. */
  nextConsumer = 0;
  hadConsumer = false;
  lastUsedAt: number;
  deleted = false;
  /** Whether it is in the broker's list of queues with work to dispatch. */
  dirty = false;
  /** Bindings to this queue, so deleting it does not scan every exchange. */
  readonly bindings = new Set<Binding>();

  constructor(
    /** Where it lives: its dead-letter exchange and its bindings' exchanges are looked up here. */
    readonly vhost: Vhost,
    readonly name: string,
    /** Declaration sequence: deterministic order of queues reached by one publish. */
    readonly seq: number,
    readonly durable: boolean,
    readonly exclusive: boolean,
    readonly ownerSessionId: string,
    readonly autoDelete: boolean,
    readonly args: QueueArgs,
    now: number,
  ) {
    this.lastUsedAt = now;
  }

  get readyCount(): number {
    return this.returned.length + this.ready.length;
  }

  peekHead(): QueuedMessage | undefined {
    const r = this.returned[this.returned.length - 1];
    return r ?? this.ready.peek();
  }

  /** Expiry of the message at the head (0: never); undefined when none is ready. */
  headExpiresAt(): number | undefined {
    const r = this.returned[this.returned.length - 1];
    return r === undefined ? this.ready.headExpiresAt() : r.expiresAt;
  }

  takeHead(): QueuedMessage | undefined {
    const m = this.returned.length > 0 ? this.returned.pop() : this.ready.shift();
    if (m !== undefined) this.readyBytes -= m.size;
    return m;
  }

  /** Body refs of the next `n` messages takeHead would hand out, head first, bodiless ones left out. */
  upcomingBodies(n: number): BodyRef[] {
    const out: BodyRef[] = [];
    for (let i = this.returned.length - 1; i >= 0 && n > 0; i--, n--) {
      const m = this.returned[i] as QueuedMessage;
      if (m.bodySize > 0) out.push({ bodyKey: m.bodyKey, bodySize: m.bodySize });
    }
    const ready = this.ready;
    for (let i = 0; i < ready.length && n > 0; i++, n--) {
      const bodySize = ready.bodySizeAt(i);
      if (bodySize > 0) out.push({ bodyKey: ready.bodyKeyAt(i), bodySize });
    }
    return out;
  }

  /** Queues a message never taken at the tail. */
  pushTail(id: number, head: MessageHead, bodyKey: number, bodySize: number, expiresAt: number): void {
    this.ready.push(id, head, bodyKey, bodySize, expiresAt);
    this.readyBytes += bodySize;
  }

  /** Puts a message taken earlier back at its original place. */
  putBack(m: QueuedMessage): void {
    const r = this.returned;
    let lo = 0;
    let hi = r.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((r[mid] as QueuedMessage).id > m.id) lo = mid + 1;
      else hi = mid;
    }
    r.splice(lo, 0, m);
    this.readyBytes += m.size;
  }

  /** Removes every ready message; answers how many there were. */
  takeAllReady(): number {
    const n = this.readyCount;
    this.returned.length = 0;
    this.ready.clear();
    this.readyBytes = 0;
    return n;
  }

  removeConsumer(c: Consumer): void {
    const i = this.consumers.indexOf(c);
    if (i < 0) return;
    this.consumers.splice(i, 1);
    if (this.nextConsumer > i) this.nextConsumer--;
    if (this.nextConsumer >= this.consumers.length) this.nextConsumer = 0;
  }
}
