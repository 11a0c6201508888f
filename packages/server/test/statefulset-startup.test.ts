import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { IDENTITY_RECORD_FILE, IdentityRecordError, readIdentityRecord } from "../src/identity-record.ts";
import { resolveNodeConfig } from "../src/node-config.ts";
import { type ClusterCalls, JoinLoop, type MemberStatus, planStatefulSetStart, StartupWaitError, type StatefulSetStartLimits } from "../src/statefulset-startup.ts";
import { nodeIdOf } from "../src/statefulset-identity.ts";

const LIMITS: StatefulSetStartLimits = { callTimeoutMs: 10, retryMs: 1, joinWaitMs: 50, maxJoinRounds: 20 };
const TEMPLATE = "raftmq-{ordinal}.raftmq-headless.{namespace}.svc.cluster.local";

function podConfig(pod: string, dataDir = mkdtempSync(join(tmpdir(), "raftmq-sts-"))) {
  return resolveNodeConfig(["--insecure"], { POD_NAME: pod, POD_NAMESPACE: "mq", RAFTMQ_PEER_HOST_TEMPLATE: TEMPLATE, RAFTMQ_DATA_DIR: dataDir });
}

/** A cluster of stand-in members: each address answers with the status given, or not at all. */
function fakeCluster(answers: Record<string, MemberStatus | null>) {
  const calls: string[] = [];
  const api: ClusterCalls = {
    async status(address) {
      const a = answers[address];
      if (a === undefined || a === null) throw new Error(`${address} unreachable`);
      return a;
    },
    async addMember(address, member) {
      calls.push(`add ${member.id} via ${address} at ${member.peerAddress}`);
      for (const a of Object.values(answers)) if (a !== null && !a.memberIds.includes(member.id)) a.memberIds.push(member.id);
    },
    async removeMember(address, id) {
      calls.push(`remove ${id} via ${address}`);
      for (const a of Object.values(answers)) if (a !== null) a.memberIds = a.memberIds.filter((m) => m !== id);
    },
  };
  return { api, calls };
}

const client = (ordinal: number) => `raftmq-${ordinal}.raftmq-headless.mq.svc.cluster.local:7600`;
const live = (memberIds: number[]): MemberStatus => ({ nodeId: 2, leaderId: 2, leaderClientAddress: client(1), memberIds, term: 3, lastIndex: 40 });
/** A pod still deciding how to start, as its StartupResponder answers. */
const deciding = (): MemberStatus => ({ nodeId: 0, leaderId: 0, leaderClientAddress: "", memberIds: [], term: 0, lastIndex: 0 });
/** A member that restarted with its data and has not seen a leader yet. */
const withState = (nodeId: number): MemberStatus => ({ nodeId, leaderId: 0, leaderClientAddress: "", memberIds: [1, 2, 3], term: 4, lastIndex: 57 });

describe("StatefulSet startup", () => {
  it("founders bootstrap a new cluster only when every other founder answers and none holds state", async () => {
    const config = podConfig("raftmq-0");
    // Bootstrapped already, with no election since: term 1 and the three founders' conf changes.
    const fresh = { nodeId: 2, leaderId: 0, leaderClientAddress: "", memberIds: [1, 2, 3], term: 1, lastIndex: 3 };
    const plan = await planStatefulSetStart(config, { calls: fakeCluster({ [client(1)]: deciding(), [client(2)]: fresh }).api, limits: LIMITS });
    expect(plan.decision).toEqual({ kind: "bootstrap", nodeId: 1 });
    expect(plan.config).toMatchObject({ nodeId: 1, join: false });
    expect(plan.needsAdding).toBe(false);
    expect(readIdentityRecord(config.dataDir)).toEqual({ nodeId: 1, joined: true });
  });

  it("a founder whose volume was lost while the cluster runs replaces its old id instead of bootstrapping", async () => {
    const config = podConfig("raftmq-0");
    const cluster = fakeCluster({ [client(1)]: live([1, 2, 3]), [client(2)]: null });
    const plan = await planStatefulSetStart(config, { calls: cluster.api, limits: LIMITS });
    expect(plan.decision).toEqual({ kind: "replace", removeIds: [1], nodeId: nodeIdOf(0, 1) });
    expect(plan.config).toMatchObject({ nodeId: nodeIdOf(0, 1), join: true });
    expect(plan.needsAdding).toBe(true);
    expect(readIdentityRecord(config.dataDir)).toEqual({ nodeId: nodeIdOf(0, 1), joined: false });
  });

  it("a founder keeps asking while members answer without a leader, then takes the leader's view", async () => {
    const config = podConfig("raftmq-2");
    const answers: Record<string, MemberStatus | null> = { [client(0)]: withState(1), [client(1)]: deciding() };
    let rounds = 0;
    const plan = await planStatefulSetStart(config, {
      calls: fakeCluster(answers).api,
      limits: { ...LIMITS, joinWaitMs: 10_000 },
      sleep: async () => {
        rounds++;
        if (rounds === 3) answers[client(0)] = { ...withState(1), leaderId: 1, leaderClientAddress: client(0) };
      },
    });
    expect(rounds).toBe(3);
    expect(plan.decision.kind).toBe("replace");
  });

  it("a founder with an empty volume never bootstraps while another founder is silent or holds state", async () => {
    // The whole cluster restarting while this pod's volume was lost: the others may hold entries
    // it once acknowledged, so bootstrapping (and voting with an empty log) could lose them.
    for (const answers of [{}, { [client(1)]: deciding() }, { [client(1)]: withState(2), [client(2)]: deciding() }, { [client(1)]: withState(2), [client(2)]: withState(3) }]) {
      const config = podConfig("raftmq-0");
      const error = await planStatefulSetStart(config, { calls: fakeCluster(answers).api, limits: LIMITS }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StartupWaitError);
      expect((error as Error).message).toMatch(/could not tell a new cluster from a lost volume/);
      expect(readIdentityRecord(config.dataDir)).toBeNull();
    }
  });

  it("a higher ordinal joins as a learner, and waits (fails to start) when no cluster answers", async () => {
    const plan = await planStatefulSetStart(podConfig("raftmq-3"), { calls: fakeCluster({ [client(0)]: live([1, 2, 3]) }).api, limits: LIMITS });
    expect(plan.decision).toEqual({ kind: "join", nodeId: 4 });
    expect(plan.config).toMatchObject({ nodeId: 4, join: true });
    await expect(planStatefulSetStart(podConfig("raftmq-3"), { calls: fakeCluster({}).api, limits: LIMITS })).rejects.toBeInstanceOf(StartupWaitError);
  });

  it("a pod with its volume restarts as the recorded id without asking anyone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "raftmq-sts-"));
    writeFileSync(join(dir, IDENTITY_RECORD_FILE), JSON.stringify({ nodeId: nodeIdOf(0, 1), joined: true }));
    const failing: ClusterCalls = { status: () => Promise.reject(new Error("must not ask")), addMember: () => Promise.reject(new Error("no")), removeMember: () => Promise.reject(new Error("no")) };
    const plan = await planStatefulSetStart(podConfig("raftmq-0", dir), { calls: failing, limits: LIMITS });
    expect(plan.decision).toEqual({ kind: "restart" });
    expect(plan.config).toMatchObject({ nodeId: nodeIdOf(0, 1), join: true });
    expect(plan.needsAdding).toBe(false);
  });

  it("refuses a data dir that holds state but no identity record", () => {
    const dir = mkdtempSync(join(tmpdir(), "raftmq-sts-"));
    writeFileSync(join(dir, "CURRENT"), "MANIFEST-000001\n");
    expect(() => readIdentityRecord(dir)).toThrow(IdentityRecordError);
    writeFileSync(join(dir, IDENTITY_RECORD_FILE), "{\"nodeId\": 0, \"joined\": true}");
    expect(() => readIdentityRecord(dir)).toThrow(/nodeId must be a positive integer/);
  });

  it("the join loop removes stale incarnations of its ordinal, adds itself once, and reports joined", async () => {
    const cluster = fakeCluster({ [client(1)]: live([1, 2, 3]) });
    let joined = 0;
    const loop = new JoinLoop(
      {
        selfId: nodeIdOf(0, 1),
        peerAddress: "10.0.0.1:7700",
        clientAddress: "10.0.0.1:7600",
        knownClientAddresses: () => [client(1), client(2)],
        dialAddress: (a) => a,
        joined: () => joined++,
        giveUp: (reason) => {
          throw new Error(reason);
        },
        log: () => {},
      },
      { calls: cluster.api, limits: LIMITS, sleep: async () => {} },
    );
    await loop.done;
    expect(joined).toBe(1);
    expect(cluster.calls).toEqual([`remove 1 via ${client(1)}`, `add ${nodeIdOf(0, 1)} via ${client(1)} at 10.0.0.1:7700`]);
  });

  it("the join loop gives up after its round limit when no leader ever answers", async () => {
    let reason = "";
    const loop = new JoinLoop(
      { selfId: 4, peerAddress: "a:1", clientAddress: "a:2", knownClientAddresses: () => [client(0)], dialAddress: (a) => a, joined: () => {}, giveUp: (r) => (reason = r), log: () => {} },
      { calls: fakeCluster({}).api, limits: LIMITS, sleep: async () => {} },
    );
    await loop.done;
    expect(reason).toMatch(/after 20 rounds/);
  });

  it("writes the record in a way a reader parses back", async () => {
    const config = podConfig("raftmq-1");
    await planStatefulSetStart(config, { calls: fakeCluster({ [client(0)]: deciding(), [client(2)]: deciding() }).api, limits: LIMITS });
    expect(JSON.parse(readFileSync(join(config.dataDir, IDENTITY_RECORD_FILE), "utf8"))).toEqual({ nodeId: 2, joined: true });
  });
});
