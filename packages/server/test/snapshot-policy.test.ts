import { describe, expect, it } from "vitest";
import { SNAPSHOT_SPREAD, SnapshotPolicy } from "../src/snapshot-policy.ts";

const limits = { entries: 100, bytes: 10_000, keepEntries: 5, keepBytes: 2_500 };

function applyAll(policy: SnapshotPolicy, sizes: number[]): void {
  for (const size of sizes) policy.applied(size);
}

describe("SnapshotPolicy", () => {
  it("is due after the entry count or the byte count, whichever comes first", () => {
    const byCount = new SnapshotPolicy(limits, 0);
    applyAll(byCount, Array(99).fill(10));
    expect(byCount.due(99)).toBe(false);
    byCount.applied(10);
    expect(byCount.due(100)).toBe(true);

    const byBytes = new SnapshotPolicy(limits, 0);
    applyAll(byBytes, [4_000, 4_000]);
    expect(byBytes.due(2)).toBe(false);
    byBytes.applied(2_000);
    expect(byBytes.bytesSinceSnapshot).toBe(10_000);
    expect(byBytes.due(3)).toBe(true);
    expect(byBytes.due(0)).toBe(false);
  });

  it("stretches both thresholds by a factor drawn anew after each snapshot, so members that apply the same entries snapshot apart", () => {
    const draws = [0.999, 0.5, 0];
    const policy = new SnapshotPolicy(limits, 0, () => draws.shift() ?? 0);
    // Drawn at 0.999: due after just under 1 + SNAPSHOT_SPREAD times each threshold.
    const stretchedEntries = Math.ceil(limits.entries * (1 + SNAPSHOT_SPREAD * 0.999));
    expect(policy.due(stretchedEntries - 1)).toBe(false);
    expect(policy.due(stretchedEntries)).toBe(true);
    applyAll(policy, [limits.bytes]);
    expect(policy.due(1)).toBe(false);
    policy.applied(Math.ceil(limits.bytes * SNAPSHOT_SPREAD * 0.999));
    expect(policy.due(2)).toBe(true);
    // The next round draws 0.5, the one after it 0: the thresholds as configured.
    policy.captured();
    expect(policy.due(limits.entries * (1 + SNAPSHOT_SPREAD * 0.5) - 1)).toBe(false);
    expect(policy.due(limits.entries * (1 + SNAPSHOT_SPREAD * 0.5))).toBe(true);
    policy.restored(0);
    expect(policy.due(limits.entries - 1)).toBe(false);
    expect(policy.due(limits.entries)).toBe(true);
  });

  it("is due once the node has read back enough bodies since the last snapshot, counted again after it", () => {
    const policy = new SnapshotPolicy(limits, 0, () => 0, 1_000_000);
    policy.bodiesRead(400_000);
    expect(policy.due(1)).toBe(false);
    policy.bodiesRead(999_999);
    expect(policy.due(1)).toBe(false);
    policy.bodiesRead(1_000_000);
    expect(policy.due(1)).toBe(true);
    // Counted from what was read at the snapshot.
    policy.captured();
    policy.bodiesRead(1_999_999);
    expect(policy.due(1)).toBe(false);
    policy.bodiesRead(2_000_000);
    expect(policy.due(1)).toBe(true);
    policy.restored(0);
    expect(policy.due(1)).toBe(false);
  });

  it("waits for twice as many bytes as the last snapshot held when that is more", () => {
    const policy = new SnapshotPolicy(limits, 15_000);
    applyAll(policy, [10_000, 10_000]);
    expect(policy.due(2)).toBe(false);
    policy.applied(10_000);
    expect(policy.due(3)).toBe(true);
    policy.captured();
    policy.stored(1_000);
    applyAll(policy, [5_000, 5_000]);
    expect(policy.due(2)).toBe(true);
  });

  it("keeps at most keepEntries entries below a snapshot, and at most keepBytes of them", () => {
    const small = new SnapshotPolicy(limits, 0);
    applyAll(small, Array(50).fill(100));
    expect(small.captured()).toBe(5);
    const large = new SnapshotPolicy(limits, 0);
    applyAll(large, [500, 500, 100, 1_000, 1_000]);
    // Newest first: 1,000 + 1,000 + 100 fit in 2,500; the 500 before them does not.
    expect(large.captured()).toBe(3);
    const huge = new SnapshotPolicy(limits, 0);
    applyAll(huge, [100, 3_000]);
    expect(huge.captured()).toBe(0);
    expect(new SnapshotPolicy({ ...limits, keepEntries: 0 }, 0).captured()).toBe(0);
  });

  it("starts counting again after a capture or a restored snapshot", () => {
    const policy = new SnapshotPolicy(limits, 0);
    applyAll(policy, [6_000, 6_000]);
    expect(policy.due(2)).toBe(true);
    expect(policy.captured()).toBe(0);
    expect(policy.bytesSinceSnapshot).toBe(0);
    // A snapshot soon after keeps what the one before kept, within the limits: two 100-byte
    // entries, not the 6,000-byte ones (keepBytes is 2,500).
    policy.applied(100);
    policy.applied(100);
    expect(policy.captured()).toBe(2);
    applyAll(policy, [100, 100, 100, 100]);
    expect(policy.captured()).toBe(5);
    applyAll(policy, [6_000, 6_000]);
    policy.restored(500);
    expect(policy.bytesSinceSnapshot).toBe(0);
    expect(policy.due(1)).toBe(false);
    expect(policy.captured()).toBe(0);
  });

  it("remembers only as many sizes as it may keep", () => {
    const policy = new SnapshotPolicy({ ...limits, keepBytes: 1_000_000 }, 0);
    applyAll(policy, Array.from({ length: 10_000 }, (_, i) => i));
    expect(policy.captured()).toBe(5);
    expect(() => new SnapshotPolicy({ ...limits, bytes: -1 }, 0)).toThrow(RangeError);
  });
});
