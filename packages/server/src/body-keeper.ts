// When bodies leave the body store. A body is deleted once no message of a stored snapshot refers
// to it: then neither a restart (which restores that snapshot or a later one, and replays the log
// after it) nor a follower sent that snapshot can need it, since a key is never handed out twice.
// Each snapshot the node stores lists the keys its state refers to (Broker.liveBodies): a segment
// of the store none of whose keys it holds is dropped whole; of the rest, what the previous list
// held and this one does not, and every key handed out since the previous one that this one does
// not hold, are deleted. Bodies acked after a snapshot stay until the next one.
//
// After a restart or a received snapshot, the node does not know what its store holds beyond the
// snapshot's list: it walks the stored keys below the snapshot's frontier once, in the
// background, deletes those the snapshot does not refer to and reports those it refers to that
// are missing (a follower that received a snapshot fetches them from a peer).
import type { LiveBodies } from "@raftmq/broker";
import { type BodyStore, firstRangeEndingAfter } from "@raftmq/storage";
import type { Logger } from "pino";

/** Gaps in the live keys up to this long are deleted key by key, longer ones as a range. */
const RANGE_DELETE_MIN = 256;

export interface BodyKeeperOptions {
  store: BodyStore;
  log: Logger;
  /**
   * Bodies the state refers to that the store lacks after a restore: fetched from a peer by the
   * node when it can. Resolves once it gave up or has stored them.
   */
  fetchMissing?: (keys: number[]) => Promise<void>;
}

export class BodyKeeper {
  /** Keys the newest stored (or restored) snapshot refers to, as LiveBodies.ranges. */
  private live: Float64Array = new Float64Array(0);
  /** Every key below this was handed out by the time of that snapshot. */
  private frontier = 1;
  /** Deletions and walks run one at a time, in order. */
  private chain: Promise<void> = Promise.resolve();
  /** Missing bodies found by the last walk; 0 once fetched. */
  missing = 0;
  private stopped = false;
  /**
   * Whether every deletion since the last walk (or since a start the store matched) went
   * through: only then does a finished collection mark the store as matching its snapshot.
   */
  private exact = true;

  constructor(private readonly o: BodyKeeperOptions) {}

  /** The state was restored from a snapshot (at start, or received from the leader) that refers to `live`. */
  restored(live: LiveBodies, why: "start" | "received"): Promise<void> {
    this.live = live.ranges;
    this.frontier = live.frontier;
    // Restarted from the snapshot whose bodies the store was last made to match (after its
    // collection, or a walk): nothing below its frontier is garbage or missing, and the walk,
    // which reads every stored body, is not needed.
    if (why === "start" && this.o.store.matchedAt() === live.frontier) {
      this.o.log.info({ event: "body-store-walk-skipped", live: live.count, frontier: live.frontier }, "body store matched this snapshot when the node stopped: not walked");
      return this.chain;
    }
    return this.run(() => this.walk(live, why));
  }

  /** A snapshot that refers to `live` was stored: bodies it does not need go. */
  snapshotStored(live: LiveBodies): Promise<void> {
    const previous = this.live;
    const previousFrontier = this.frontier;
    this.live = live.ranges;
    this.frontier = live.frontier;
    return this.run(() => this.collect(previous, previousFrontier, live));
  }

  /** Resolves once the deletions and walks asked for so far are done. */
  idle(): Promise<void> {
    return this.chain;
  }

  /** The node is stopping: a walk under way ends at its next step, and nothing more starts. */
  stop(): Promise<void> {
    this.stopped = true;
    return this.chain;
  }

  private run(task: () => Promise<void>): Promise<void> {
    const next = this.chain.then(() => (this.stopped ? undefined : task())).catch((err: unknown) => {
      this.exact = false;
      this.o.log.error({ event: "body-store-maintenance-failed", err }, "deleting unreferenced message bodies failed");
    });
    this.chain = next;
    return next;
  }

  private async collect(previous: Float64Array, previousFrontier: number, live: LiveBodies): Promise<void> {
    const { store } = this.o;
    // Whole segments first: the deletes below skip the keys they held.
    store.dropSegmentsWithout(live.ranges, live.frontier);
    const lr = live.ranges;
    const liveCount = lr.length / 2;
    const gone: number[] = [];
    const ranges: [number, number][] = [];
    /** Deletes [from, to): as a range when long, key by key when short. */
    const drop = (from: number, to: number) => {
      if (to - from >= RANGE_DELETE_MIN) ranges.push([from, to]);
      else for (let k = from; k < to; k++) gone.push(k);
    };
    // Keys the previous snapshot held that this one does not, grouped by the gap between live
    // ranges they fall in. A group that fills most of its span (a queue's consumed head, say)
    // goes as one range: the keys between are garbage too, and a range is compacted once
    // deleted.
    let group: [number, number][] = [];
    let groupCount = 0;
    let groupGap = -1;
    const endGroup = () => {
      const first = group[0];
      const last = group[group.length - 1];
      if (first !== undefined && last !== undefined && groupCount >= RANGE_DELETE_MIN && last[1] - first[0] <= 2 * groupCount) ranges.push([first[0], last[1]]);
      else for (const [from, to] of group) drop(from, to);
      group = [];
      groupCount = 0;
    };
    let j = 0;
    for (let i = 0; i < previous.length; i += 2) {
      const end = previous[i + 1] as number;
      let k = previous[i] as number;
      while (k < end) {
        while (j < liveCount && (lr[2 * j + 1] as number) <= k) j++;
        // Live range j, if any, ends after k.
        if (j < liveCount && (lr[2 * j] as number) <= k) {
          k = Math.min(end, lr[2 * j + 1] as number);
          continue;
        }
        const to = j < liveCount ? Math.min(end, lr[2 * j] as number) : end;
        // [k, to) is in the gap before live range j.
        if (j !== groupGap) endGroup();
        groupGap = j;
        group.push([k, to]);
        groupCount += to - k;
        k = to;
      }
    }
    endGroup();
    // Keys handed out since the previous snapshot that this one does not hold: the gaps between
    // live ranges from the previous frontier on.
    let from = previousFrontier;
    for (let r = firstRangeEndingAfter(lr, previousFrontier); ; r++) {
      const to = r < liveCount ? (lr[2 * r] as number) : live.frontier;
      if (to > from) drop(from, to);
      if (r >= liveCount) break;
      from = Math.max(from, lr[2 * r + 1] as number);
    }
    await store.remove(gone);
    for (const [a, b] of ranges) await store.removeRange(a, b);
    if (this.exact) await store.markMatched(live.frontier);
  }

  private async walk(live: LiveBodies, why: "start" | "received"): Promise<void> {
    const { store, log } = this.o;
    const started = performance.now();
    // Bodies restored from an older snapshot that carried them are written before the walk looks.
    await store.sync();
    // Segments holding no body the snapshot refers to go whole, unread.
    store.dropSegmentsWithout(live.ranges, live.frontier);
    const lr = live.ranges;
    const missing: number[] = [];
    let garbage: number[] = [];
    let deleted = 0;
    // The next live key not met yet among the stored keys, in live range r.
    let r = 0;
    let next = lr.length > 0 ? (lr[0] as number) : Number.POSITIVE_INFINITY;
    const passNext = () => {
      next++;
      if (next >= (lr[2 * r + 1] as number)) {
        r++;
        next = 2 * r < lr.length ? (lr[2 * r] as number) : Number.POSITIVE_INFINITY;
      }
    };
    for await (const batch of store.keys(live.frontier)) {
      // Stopping: what is left is walked at the next start.
      if (this.stopped) return;
      for (const k of batch) {
        while (next < k) {
          missing.push(next);
          passNext();
        }
        if (next === k) passNext();
        else garbage.push(k);
      }
      if (garbage.length >= 4096) {
        deleted += garbage.length;
        await store.remove(garbage);
        garbage = [];
      }
    }
    while (next < Number.POSITIVE_INFINITY) {
      missing.push(next);
      passNext();
    }
    deleted += garbage.length;
    await store.remove(garbage);
    this.missing = missing.length;
    if (missing.length === 0) {
      this.exact = true;
      await store.markMatched(live.frontier);
    }
    log.info(
      { event: "body-store-walked", why, live: live.count, deleted, missing: missing.length, ms: Math.round(performance.now() - started) },
      missing.length === 0 ? "body store matches the snapshot" : `${missing.length} message bodies the snapshot refers to are not in the body store`,
    );
    if (missing.length > 0 && this.o.fetchMissing !== undefined) {
      await this.o.fetchMissing(missing);
    }
  }
}
