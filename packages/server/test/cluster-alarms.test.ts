// Other members' alarms: raised while a member says so, cleared when it says so, and forgotten
// when it stops answering for longer than the stale time.
import { describe, expect, it } from "vitest";
import { ClusterAlarms, type MemberAlarms } from "../src/cluster-alarms.ts";

describe("cluster alarms", () => {
  it("holds a member's alarm while it reports one, and drops it once cleared or stale", async () => {
    let now = 0;
    const answers = new Map<number, MemberAlarms | Error>([
      [2, { alarms: ["disk"], detail: "disk alarm: 10 MiB free" }],
      [3, { alarms: [], detail: "" }],
    ]);
    let changes = 0;
    const alarms = new ClusterAlarms({
      peers: () => [2, 3],
      ask: async (id) => {
        const a = answers.get(id);
        if (a instanceof Error || a === undefined) throw a ?? new Error("unknown");
        return a;
      },
      now: () => now,
      staleMs: 300,
      changed: () => changes++,
    });
    expect(alarms.reason).toBe("");
    await alarms.poll();
    expect(alarms.reason).toBe("node 2: disk alarm: 10 MiB free");
    expect(changes).toBe(1);
    // Node 2 stops answering: its alarm stands until it is stale.
    answers.set(2, new Error("unavailable"));
    now = 200;
    await alarms.poll();
    expect(alarms.reason).toBe("node 2: disk alarm: 10 MiB free");
    now = 400;
    expect(alarms.reason).toBe("");
    // Back, alarmed on memory; then cleared.
    answers.set(2, { alarms: ["memory"], detail: "memory alarm" });
    await alarms.poll();
    expect(alarms.reason).toBe("node 2: memory alarm");
    answers.set(2, { alarms: [], detail: "" });
    await alarms.poll();
    expect(alarms.reason).toBe("");
    expect(changes).toBe(3);
  });
});
