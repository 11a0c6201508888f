// The consumer-liveness check without a cluster: how queues are judged against the consumers the
// harness holds open, how long the check waits, what the summary says when a queue lists a
// consumer that is gone; and the vanishing consumers' plan, a pure function of the seed.

import { describe, expect, it } from "vitest";
import { checkConsumerLiveness, describeLiveness, judgeQueues, LIVENESS_MARGIN_MS, livenessSettleMs, MAX_DERIVED_SETTLE_MS, wrongQueues } from "../src/consumer-liveness.ts";
import { planFaults } from "../src/fault-schedule.ts";
import { planVanishers } from "../src/vanishing-consumers.ts";

const queue = (name: string, consumers: number, messagesUnacked = 0) => ({ name, consumers, messagesUnacked });

describe("judging queues against the open consumers", () => {
  it("a queue must list exactly the consumers the harness holds open on it, and no unacked message", () => {
    const judged = judgeQueues([queue("a", 1), queue("b", 2, 16), queue("c", 0, 3)], new Map([["a", 1]]));
    expect(judged).toEqual([
      { queue: "a", listed: 1, expected: 1, unacked: 0 },
      { queue: "b", listed: 2, expected: 0, unacked: 16 },
      { queue: "c", listed: 0, expected: 0, unacked: 3 },
    ]);
    expect(wrongQueues(judged).map((q) => q.queue)).toEqual(["b", "c"]);
  });

  it("an open consumer the cluster does not list is wrong too, and so is a queue that is missing", () => {
    const judged = judgeQueues([queue("a", 0)], new Map([["a", 1], ["z", 2]]));
    expect(wrongQueues(judged)).toEqual([
      { queue: "a", listed: 0, expected: 1, unacked: 0 },
      { queue: "z", listed: 0, expected: 2, unacked: 0 },
    ]);
  });

  it("the settle time is the nodes' keepalive, its timeout and a margin", () => {
    expect(livenessSettleMs(1000, 1000)).toBe(2000 + LIVENESS_MARGIN_MS);
    expect(livenessSettleMs(3_600_000, 1000)).toBe(MAX_DERIVED_SETTLE_MS);
  });
});

describe("checkConsumerLiveness", () => {
  it("asks again until the listing is right, within the settle time", async () => {
    let calls = 0;
    const check = await checkConsumerLiveness({
      phase: "open",
      expected: () => new Map([["a", 1]]),
      settleMs: 5000,
      listQueues: async () => (++calls < 3 ? [queue("a", 2, 8)] : [queue("a", 1)]),
    });
    expect(check).toMatchObject({ phase: "open", valid: true, queues: [{ queue: "a", listed: 1, expected: 1, unacked: 0 }] });
    expect(calls).toBe(3);
    expect(describeLiveness([check])).toMatch(/^consumers exact \(open 1 after \d\.\d s\)$/);
  });

  it("fails once the settle time is up, naming the queue, listed and expected consumers and the unacked count", async () => {
    const started = Date.now();
    const check = await checkConsumerLiveness({ phase: "closed", expected: () => new Map(), settleMs: 600, listQueues: async () => [queue("chaos-a", 2, 16), queue("chaos-b", 0)] });
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
    expect(check.valid).toBe(false);
    expect(describeLiveness([check])).toMatch(/^consumers WRONG \(closed, 0\.\d s into a 0\.6 s settle: chaos-a lists 2 consumers, expected 0, 16 unacked\)$/);
  });

  it("a cluster that never answers fails the check with the last error", async () => {
    const check = await checkConsumerLiveness({
      phase: "open",
      expected: () => new Map([["a", 1]]),
      settleMs: 300,
      listQueues: async () => {
        throw new Error("no leader");
      },
    });
    expect(check.valid).toBe(false);
    expect(check.error).toBe("no answer from the cluster: no leader");
    expect(describeLiveness([check])).toBe("consumers WRONG (open: no answer from the cluster: no leader)");
  });
});

describe("planVanishers", () => {
  const schedule = planFaults(7, ["partition", "loss", "transfer"], 30_000);
  const kinds = ["freeze", "cut", "kill"] as const;

  it("is the same for the same seed, rotates kinds, targets and queues, and vanishes each in the middle of a fault", () => {
    const plans = planVanishers(7, 6, schedule, 30_000, kinds, ["a", "b", "c"]);
    expect(planVanishers(7, 6, schedule, 30_000, kinds, ["a", "b", "c"])).toEqual(plans);
    expect(plans.map((p) => p.kind)).toEqual(["freeze", "cut", "kill", "freeze", "cut", "kill"]);
    expect(plans.map((p) => p.target)).toEqual(["leader", "follower", "leader", "follower", "leader", "follower"]);
    expect(plans.map((p) => p.queue)).toEqual(["a", "b", "c", "a", "b", "c"]);
    for (const p of plans) {
      expect(p.startAtMs).toBeGreaterThanOrEqual(0);
      expect(p.startAtMs).toBeLessThan(p.vanishAtMs);
      expect(schedule.some((f) => p.vanishAtMs >= f.atMs && p.vanishAtMs <= f.atMs + f.holdMs)).toBe(true);
    }
  });

  it("without faults, vanishes within the run; with none asked, plans none", () => {
    for (const p of planVanishers(3, 3, [], 20_000, ["freeze", "kill"], ["a"])) {
      expect(p.vanishAtMs).toBeGreaterThan(0);
      expect(p.vanishAtMs).toBeLessThan(20_000);
    }
    expect(planVanishers(3, 0, schedule, 30_000, kinds, ["a"])).toEqual([]);
  });
});
