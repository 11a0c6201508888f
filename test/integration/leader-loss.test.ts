// Fast failover: when the leader's process dies, its followers see its peer streams close and
// campaign at once instead of waiting out their election timeout. The timeout here is 5-10 s
// (100 ticks of 50 ms), long enough that no follower's timer can fire first and take the fast
// path's place under a loaded machine.
import { describe, expect, it } from "vitest";
import { eventually, waitForLeader, waitForNewLeader } from "./broker-test-client.ts";
import { useThreeNodeCluster } from "./three-node-cluster.ts";

const { harness, ids, client } = useThreeNodeCluster("leader-loss", ["--tick-ms", "50", "--election-ticks", "100", "--log-level", "info"]);

describe("losing the leader", () => {
  it("a follower campaigns as soon as the dead leader's streams close, well before its election timeout", async () => {
    const leader = await waitForLeader(ids.map(client), 60_000);
    const before = Number((await client(leader).call("Status", {})).term);
    const survivors = ids.filter((id) => id !== leader);

    await harness.stop(leader, "SIGKILL");
    const next = await waitForNewLeader(survivors.map(client), leader);
    expect(Number((await client(next).call("Status", {})).term)).toBeGreaterThan(before);
    // The log line may reach the harness a little after the new leader answers.
    await eventually("a survivor's leader-stream-closed line", async () => (survivors.some((id) => harness.eventCount(id, "leader-stream-closed") > 0) ? true : undefined), 5_000);
  });
});
