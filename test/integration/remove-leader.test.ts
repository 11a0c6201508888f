// Removing the leader itself. A leader that committed its own removal stops at once, and with two
// voters left the survivor might never learn of that commit and wait forever for the removed
// node's vote (found by the chaos harness). The node hands leadership away first instead.
import { describe, expect, it } from "vitest";
import { publishReliably, waitForLeader } from "./broker-test-client.ts";
import { useThreeNodeCluster } from "./three-node-cluster.ts";

const { harness, client } = useThreeNodeCluster("remove-leader", ["--tick-ms", "50", "--log-level", "info"]);

describe("removing the leader", () => {
  it("with two voters left, the survivor leads on its own and keeps serving", async () => {
    // Shrink to two voters: remove one follower.
    const first = await waitForLeader([1, 2, 3].map(client));
    const follower = [1, 2, 3].find((id) => id !== first) as number;
    const followerExit = harness.processes.get(follower)?.exit;
    await client(first).callRetrying("RemoveMember", { id: follower });
    expect(await followerExit).toEqual({ code: 0, signal: null });
    const pair = [1, 2, 3].filter((id) => id !== follower);

    // Now remove the leader of the pair, asking the leader itself.
    const leader = await waitForLeader(pair.map(client));
    const survivor = pair.find((id) => id !== leader) as number;
    const leaderExit = harness.processes.get(leader)?.exit;
    const removed = await client(leader).callRetrying("RemoveMember", { id: leader });
    expect(removed.members.map((m) => Number(m.id))).toEqual([survivor]);
    const exit = await Promise.race([leaderExit, new Promise((r) => setTimeout(() => r("timeout"), 15_000))]);
    expect(exit).toEqual({ code: 0, signal: null });

    // The survivor is the whole cluster now: it leads and commits alone.
    expect(await waitForLeader([client(survivor)])).toBe(survivor);
    await client(survivor).callRetrying("DeclareQueue", { name: "after-removal", durable: true });
    const result = await publishReliably(client(survivor), { exchange: "", routingKey: "after-removal", producerId: "remove-leader", total: 20, perRequest: 5, window: 4 });
    expect(result.confirmed.size).toBe(20);
  });
});
