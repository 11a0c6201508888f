// A seeded network between simulated nodes: messages wait a random number of ticks, may be
// lost or duplicated, and never cross a partition. Delivery order within a tick is shuffled.
import type { Message } from "../src/index.ts";
import { randomInt } from "../src/index.ts";
import type { FaultProfile } from "./fault-profiles.ts";

export class SimNetwork {
  private readonly buckets = new Map<number, Message[]>();
  /** Node id -> partition group; nodes in different groups cannot talk. */
  private groups: Map<number, number> | null = null;
  /** A bridge node talks to every group. */
  private bridge = 0;
  sent = 0;
  dropped = 0;
  duplicated = 0;

  constructor(
    private readonly random: () => number,
    public faults: Pick<FaultProfile, "dropRate" | "duplicateRate" | "maxDelayTicks">,
  ) {}

  send(m: Message, now: number): void {
    this.sent++;
    if (!this.connected(m.from, m.to) || this.random() < this.faults.dropRate) {
      this.dropped++;
      return;
    }
    this.enqueue(m, now);
    if (this.random() < this.faults.duplicateRate) {
      this.duplicated++;
      this.enqueue(m, now);
    }
  }

  private enqueue(m: Message, now: number): void {
    const at = now + randomInt(this.random, 0, this.faults.maxDelayTicks + 1);
    let bucket = this.buckets.get(at);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(at, bucket);
    }
    bucket.push(m);
  }

  /** Takes the messages due at `now`, shuffled, dropping those a partition now blocks. */
  takeDue(now: number): Message[] {
    const bucket = this.buckets.get(now);
    if (bucket === undefined || bucket.length === 0) return [];
    this.buckets.delete(now);
    for (let i = bucket.length - 1; i > 0; i--) {
      const j = randomInt(this.random, 0, i + 1);
      const a = bucket[i];
      const b = bucket[j];
      if (a !== undefined && b !== undefined) {
        bucket[i] = b;
        bucket[j] = a;
      }
    }
    return bucket.filter((m) => {
      const ok = this.connected(m.from, m.to);
      if (!ok) this.dropped++;
      return ok;
    });
  }

  /** Messages not delivered by the end of a tick wait for the next one. */
  carryOver(now: number, left: Message[]): void {
    if (left.length === 0) return;
    const next = this.buckets.get(now + 1) ?? [];
    this.buckets.set(now + 1, [...left, ...next]);
  }

  pendingAt(now: number): number {
    return this.buckets.get(now)?.length ?? 0;
  }

  partition(groups: number[][], bridge = 0): void {
    this.groups = new Map();
    groups.forEach((group, i) => {
      for (const id of group) this.groups?.set(id, i);
    });
    this.bridge = bridge;
  }

  heal(): void {
    this.groups = null;
    this.bridge = 0;
  }

  isPartitioned(): boolean {
    return this.groups !== null;
  }

  connected(a: number, b: number): boolean {
    if (this.groups === null || a === this.bridge || b === this.bridge) return true;
    return this.groups.get(a) === this.groups.get(b);
  }
}
