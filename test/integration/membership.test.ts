// Membership and log compaction: a fourth node joins after the log was compacted and catches up
// by InstallSnapshot, a node down during compaction does the same, leadership moves on request,
// and a removed node stops and exits cleanly.
import { testAuth } from "./three-node-cluster.ts";
import { describe, expect, it } from "vitest";
import { eventually, GrpcStatus, isServiceError, publishReliably, raftmq, TestClient, waitForLeader } from "./broker-test-client.ts";
import { useThreeNodeCluster } from "./three-node-cluster.ts";

const { harness, clients, client } = useThreeNodeCluster("membership", ["--tick-ms", "50", "--snapshot-keep-entries", "10", "--log-level", "info"]);

async function compactEverywhere(ids: number[]): Promise<number> {
  let index = 0;
  for (const id of ids) {
    const res = await client(id).call("TriggerSnapshot", {});
    index = Math.max(index, Number(res.index));
  }
  return index;
}

function statusOf(id: number) {
  return client(id).call("Status", {}, 2000);
}

describe("membership", () => {
  it("adds a fourth node after compaction: it installs a snapshot, catches up and is promoted to voter", async () => {
    const leader = await waitForLeader([1, 2, 3].map(client));
    await client(leader).call("DeclareQueue", { name: "members-q", durable: true });
    const { confirmed } = await publishReliably(client(leader), { exchange: "", routingKey: "members-q", producerId: "p-members", total: 2000, perRequest: 10, window: 4 });
    expect(confirmed.size).toBe(2000);
    const snapshotIndex = await compactEverywhere([1, 2, 3]);
    const leaderStatus = await statusOf(leader);
    expect(Number(leaderStatus.snapshotIndex)).toBeGreaterThan(0);
    expect(snapshotIndex).toBeGreaterThan(50);

    const spec = await harness.addNodeSpec();
    await harness.start(spec.id, { members: [1, 2, 3, spec.id], join: true });
    clients.set(spec.id, new TestClient(harness.clientAddress(spec.id), testAuth(harness)));
    const follower = [1, 2, 3].find((id) => id !== leader) as number;
    // Through a follower: membership changes are forwarded to the leader.
    const added = await client(follower).call("AddMember", { id: spec.id, peerAddress: `127.0.0.1:${spec.peerPort}`, clientAddress: harness.clientAddress(spec.id) });
    expect(added.members.map((m) => Number(m.id))).toContain(spec.id);

    await eventually("node 4 promoted to voter", async () => {
      const s = await statusOf(leader);
      const m = s.members.find((x) => Number(x.id) === spec.id);
      return m?.role === raftmq.v1.MemberRole.MEMBER_ROLE_VOTER ? true : undefined;
    });
    const info = await client(spec.id).callRetrying("QueueInfo", { name: "members-q" });
    expect(Number(info.queue?.messagesReady)).toBe(2000);
    expect(harness.logs(spec.id)).toMatch(/"event":"snapshot-(installed|restored)"/);
    const s4 = await statusOf(spec.id);
    expect(s4.members.map((m) => Number(m.id))).toEqual([1, 2, 3, 4]);
  });

  it("catches up a node that was down while the others compacted, by InstallSnapshot", async () => {
    const leader = await waitForLeader([1, 2, 3, 4].map(client));
    const down = [1, 2, 3, 4].find((id) => id !== leader) as number;
    await harness.stop(down, "SIGTERM");
    const up = [1, 2, 3, 4].filter((id) => id !== down);
    const next = await waitForLeader(up.map(client));
    await publishReliably(client(next), { exchange: "", routingKey: "members-q", producerId: "p-members-2", total: 1000, perRequest: 5, window: 4 });
    await compactEverywhere(up);
    await harness.start(down, { members: [1, 2, 3], flags: [] });
    await eventually("the restarted node has every message", async () => {
      const q = await client(down).call("QueueInfo", { name: "members-q" }, 2000);
      return Number(q.queue?.messagesReady) === 3000 ? true : undefined;
    });
    expect(harness.logs(down)).toMatch(/"event":"snapshot-(installed|restored)"/);
  });

  it("transfers leadership to the node asked for", async () => {
    const leader = await waitForLeader([1, 2, 3, 4].map(client));
    const target = [1, 2, 3, 4].find((id) => id !== leader) as number;
    // A transfer that does not finish in the leader's window answers UNAVAILABLE ("retry
    // shortly"), as it may on a loaded machine; a client retries, and so does this test.
    const res = await client(target).callRetrying("TransferLeadership", { to: target });
    expect(Number(res.leaderId)).toBe(target);
    expect(await waitForLeader([1, 2, 3, 4].map(client))).toBe(target);
  });

  it("removes a member: it leaves the member list and its process exits 0", async () => {
    const leader = await waitForLeader([1, 2, 3, 4].map(client));
    const victim = [1, 2, 3, 4].find((id) => id !== leader) as number;
    const proc = harness.processes.get(victim);
    expect(proc).toBeDefined();
    const removed = await client(leader).call("RemoveMember", { id: victim });
    expect(removed.members.map((m) => Number(m.id))).not.toContain(victim);
    const exit = await Promise.race([proc?.exit, new Promise((r) => setTimeout(() => r("timeout"), 15_000))]);
    expect(exit).toEqual({ code: 0, signal: null });
    const rest = [1, 2, 3, 4].filter((id) => id !== victim).map(client);
    await waitForLeader(rest);
    // The removed node's id is refused a second time with a clear message.
    try {
      await client(leader).callRetrying("RemoveMember", { id: victim });
      throw new Error("a second removal succeeded");
    } catch (err) {
      if (!isServiceError(err)) throw err;
      expect(err.code).toBe(GrpcStatus.FAILED_PRECONDITION);
      expect(err.details).toContain(`node ${victim} is not a member`);
    }
  });
});
