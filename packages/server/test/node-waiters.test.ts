// The driver's waiters, each on its own: membership changes answered by the entry that applies at
// their index, and leadership waits answered by the leader-changed event or the clock.
import { describe, expect, it } from "vitest";
import { learnerToPromote } from "../src/learner-promotion.ts";
import { LeadershipWatch } from "../src/leadership-watch.ts";
import { MembershipWaiters } from "../src/membership-waiters.ts";
import { OutcomeUnknownError } from "../src/node-errors.ts";
import { ManualClock } from "./manual-clock.ts";

describe("membership waiters", () => {
  it("resolve when their entry applies in the term it was proposed in, and reject when another took its place", async () => {
    const w = new MembershipWaiters();
    const kept = w.wait(10, 3);
    const replaced = w.wait(11, 3);
    w.applied(10, 3);
    w.applied(11, 4);
    await expect(kept).resolves.toBeUndefined();
    await expect(replaced).rejects.toBeInstanceOf(OutcomeUnknownError);
  });
});

describe("leadership watch", () => {
  it("resolves on the leader-changed event that meets the wait, and false once the clock passes the timeout", async () => {
    const clock = new ManualClock();
    const watch = new LeadershipWatch(clock);
    const toThree = watch.waitFor((id) => id === 3, 1000);
    const anyLeader = watch.waitFor((id) => id !== 0, 500);
    watch.changed(2);
    await expect(anyLeader).resolves.toBe(true);
    clock.advance(999);
    watch.changed(3);
    await expect(toThree).resolves.toBe(true);
    const toOne = watch.waitFor((id) => id === 1, 100);
    clock.advance(100);
    await expect(toOne).resolves.toBe(false);
  });
});

describe("learner promotion", () => {
  const learner = (id: number, match: number) => ({ id, match, next: match + 1, state: "replicate" as const, recentActive: true, isLearner: true });

  it("promotes a learner within the lag of the leader's log, never one that holds nothing", () => {
    expect(learnerToPromote({ lastIndex: 100, progress: [learner(4, 0)] }, 1000)).toBe(0);
    expect(learnerToPromote({ lastIndex: 5000, progress: [learner(4, 3000)] }, 1000)).toBe(0);
    expect(learnerToPromote({ lastIndex: 5000, progress: [learner(4, 3000), learner(5, 4500)] }, 1000)).toBe(5);
  });
});
