// The consumers of one client Consume stream as the node holding it sees them, across the
// sessions that stream goes through when leadership moves. Each session numbers a consumer's
// deliveries from 1; the client sees one rising sequence per consumer tag: the tags of a later
// session are offset past every tag the client was given before, so an old tag never names a
// new delivery, and settling an old one is known to be void (the session that gave it went down
// and requeued it).
import type { raftmq } from "@raftmq/proto";

type Subscription = raftmq.v1.Subscription.$Properties;

interface TrackedConsumer {
  /** What the client asked for, prefetch changes included; null once cancelled or refused. */
  subscription: Subscription | null;
  /** Whether the broker took the subscription (`subscribed`) in some session of the stream. */
  taken: boolean;
  /** Added to this session's delivery tags to give the client's. */
  base: number;
  /** The highest delivery tag the client was given. */
  highest: number;
}

/** Where a client's settlement of a delivery tag goes. */
export type SettleTarget = { kind: "session"; deliveryTag: number } | { kind: "void" } | { kind: "unknown" };

/** Consumer tags a stream's numbering is kept for across sessions, cancelled ones included. */
export const MAX_TRACKED_CONSUMERS = 4096;

export class StreamConsumers {
  private readonly byTag = new Map<string, TrackedConsumer>();
  /** Tags whose subscribe went to the current session and has not been answered. */
  private readonly awaiting = new Set<string>();

  /**
   * The client subscribes `s`. False when a subscription of that tag is taken already: the
   * session refuses the second one, and the first stays as it is.
   */
  subscribe(s: Subscription): boolean {
    const tag = s.consumerTag ?? "";
    const known = this.byTag.get(tag);
    if (known?.subscription != null && known.taken) return false;
    if (known === undefined) this.byTag.set(tag, { subscription: { ...s }, taken: false, base: 0, highest: 0 });
    else {
      known.subscription = { ...s };
      known.taken = false;
    }
    return true;
  }

  /** The subscribe of `tag` went to the current session. */
  sent(tag: string): void {
    this.awaiting.add(tag);
  }

  /** The session answered `subscribed`. */
  taken(tag: string): void {
    this.awaiting.delete(tag);
    const c = this.byTag.get(tag);
    if (c !== undefined) c.taken = true;
  }

  /**
   * The session answered an error naming `tag` and no delivery: when a subscribe of that tag was
   * awaiting its answer, that subscribe failed. Returns whether it did, and whether the broker
   * had taken that subscription in an earlier session (a resubscription that failed).
   */
  refused(tag: string): { subscribe: boolean; wasTaken: boolean } {
    if (!this.awaiting.delete(tag)) return { subscribe: false, wasTaken: false };
    const c = this.byTag.get(tag);
    const wasTaken = c?.taken ?? false;
    if (c !== undefined) {
      c.subscription = null;
      c.taken = false;
    }
    return { subscribe: true, wasTaken };
  }

  /**
   * The client cancelled, or the broker did (its queue was deleted). False when no subscription
   * of that tag was known: the session is the one to answer.
   */
  cancelled(tag: string): boolean {
    const c = this.byTag.get(tag);
    if (c?.subscription == null) return false;
    c.subscription = null;
    return true;
  }

  /** False when no subscription of that tag is known: the session is the one to answer. */
  setPrefetch(tag: string, prefetch: number): boolean {
    const s = this.byTag.get(tag)?.subscription;
    if (s == null) return false;
    s.prefetch = prefetch;
    return true;
  }

  /** The client's tag for a delivery tag of the current session. */
  delivered(consumerTag: string, sessionTag: number): number {
    const c = this.byTag.get(consumerTag);
    if (c === undefined) return sessionTag;
    const tag = sessionTag + c.base;
    if (tag > c.highest) c.highest = tag;
    return tag;
  }

  /** The client's tag for a delivery tag an error of the current session names (0 stays 0). */
  clientTag(consumerTag: string, sessionTag: number): number {
    if (sessionTag === 0) return 0;
    return sessionTag + (this.byTag.get(consumerTag)?.base ?? 0);
  }

  /**
   * Where a settlement of the client's `deliveryTag` goes: to the current session under its tag
   * there; void when an earlier session gave it; unknown when no session gave it yet (only
   * possible between sessions, when nothing was given in the current one).
   */
  settle(consumerTag: string, deliveryTag: number, betweenSessions: boolean): SettleTarget {
    const c = this.byTag.get(consumerTag);
    if (c === undefined || deliveryTag === 0) return { kind: "session", deliveryTag };
    if (deliveryTag <= c.base) return { kind: "void" };
    if (betweenSessions) return { kind: "unknown" };
    return { kind: "session", deliveryTag: deliveryTag - c.base };
  }

  /** The session went down: every tag given so far is void, and a later session's start above them. */
  sessionEnded(): void {
    this.awaiting.clear();
    let forget = this.byTag.size - MAX_TRACKED_CONSUMERS;
    for (const [tag, c] of this.byTag) {
      // A cancelled tag is kept so that subscribing it again continues its numbering; past the
      // bound, the oldest cancelled ones are forgotten.
      if (forget > 0 && c.subscription === null) {
        this.byTag.delete(tag);
        forget--;
      } else c.base = c.highest;
    }
  }

  /** The subscriptions to make in a new session: every one not cancelled or refused. */
  subscriptions(): Subscription[] {
    const out: Subscription[] = [];
    for (const c of this.byTag.values()) if (c.subscription !== null) out.push(c.subscription);
    return out;
  }
}
