import { describe, expect, it } from "vitest";
import {
  decideStartup,
  ID_STRIDE,
  type IdentityProblem,
  MAX_ORDINAL,
  nodeIdOf,
  ordinalOfNodeId,
  parseHostAliases,
  parsePodName,
  resolveStatefulSetIdentity,
  StatefulSetIdentityError,
  type StatefulSetIdentityInput,
} from "../src/statefulset-identity.ts";

const TEMPLATE = "raftmq-{ordinal}.raftmq-headless.{namespace}.svc.cluster.local";

function input(overrides: Partial<StatefulSetIdentityInput> = {}): StatefulSetIdentityInput {
  return { podName: "raftmq-0", namespace: "mq", peerHostTemplate: TEMPLATE, peerPort: 7700, clientPort: 7600, ...overrides };
}

function problemOf(fn: () => unknown): IdentityProblem["kind"] {
  try {
    fn();
  } catch (err) {
    if (err instanceof StatefulSetIdentityError) return err.problem.kind;
    throw err;
  }
  throw new Error("expected a StatefulSetIdentityError, got none");
}

describe("identity from the pod name", () => {
  it("makes the node id the ordinal plus one", () => {
    expect(resolveStatefulSetIdentity(input({ podName: "raftmq-0" })).nodeId).toBe(1);
    expect(resolveStatefulSetIdentity(input({ podName: "raftmq-2" })).nodeId).toBe(3);
    expect(parsePodName("my-broker-12")).toEqual({ statefulSet: "my-broker", ordinal: 12 });
  });

  it("lists the founding ordinals with their headless DNS names and ports", () => {
    const id = resolveStatefulSetIdentity(input({ podName: "raftmq-1" }));
    expect(id.initialCluster).toEqual([
      { id: 1, peerAddress: "raftmq-0.raftmq-headless.mq.svc.cluster.local:7700", clientAddress: "raftmq-0.raftmq-headless.mq.svc.cluster.local:7600" },
      { id: 2, peerAddress: "raftmq-1.raftmq-headless.mq.svc.cluster.local:7700", clientAddress: "raftmq-1.raftmq-headless.mq.svc.cluster.local:7600" },
      { id: 3, peerAddress: "raftmq-2.raftmq-headless.mq.svc.cluster.local:7700", clientAddress: "raftmq-2.raftmq-headless.mq.svc.cluster.local:7600" },
    ]);
    expect(id.advertiseHost).toBe("raftmq-1.raftmq-headless.mq.svc.cluster.local");
    expect(id.joinAsLearner).toBe(false);
  });

  it("makes ordinals past the initial cluster size join as learners", () => {
    expect(resolveStatefulSetIdentity(input({ podName: "raftmq-2", initialClusterSize: 3 })).joinAsLearner).toBe(false);
    const fourth = resolveStatefulSetIdentity(input({ podName: "raftmq-3", initialClusterSize: 3 }));
    expect(fourth.joinAsLearner).toBe(true);
    expect(fourth.nodeId).toBe(4);
    expect(fourth.initialCluster.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(resolveStatefulSetIdentity(input({ podName: "raftmq-4", initialClusterSize: 5 })).joinAsLearner).toBe(false);
  });

  it("fills {statefulset} from the pod name", () => {
    const id = resolveStatefulSetIdentity(input({ podName: "mq-1", peerHostTemplate: "{statefulset}-{ordinal}.peers" }));
    expect(id.advertiseHost).toBe("mq-1.peers");
  });

  it("dials aliased hosts at their IPs, for the local rehearsal", () => {
    const aliases = parseHostAliases("raftmq-0.h=127.0.0.10, raftmq-1.h=127.0.0.11,raftmq-2.h=127.0.0.12");
    const id = resolveStatefulSetIdentity(input({ podName: "raftmq-1", peerHostTemplate: "raftmq-{ordinal}.h", hostAliases: aliases }));
    expect(id.initialCluster.map((m) => m.peerAddress)).toEqual(["127.0.0.10:7700", "127.0.0.11:7700", "127.0.0.12:7700"]);
    expect(id.advertiseHost).toBe("127.0.0.11");
  });

  it("refuses pod names without an ordinal", () => {
    for (const podName of ["raftmq", "raftmq-", "raftmq-01", "raftmq-x", "-3", "Raftmq_0-1x", ""]) {
      expect(problemOf(() => resolveStatefulSetIdentity(input({ podName }))), podName).toBe("bad-pod-name");
    }
  });

  it("refuses ordinals and cluster sizes out of range", () => {
    expect(problemOf(() => parsePodName(`raftmq-${MAX_ORDINAL + 1}`))).toBe("ordinal-out-of-range");
    expect(parsePodName(`raftmq-${MAX_ORDINAL}`).ordinal).toBe(MAX_ORDINAL);
    expect(problemOf(() => resolveStatefulSetIdentity(input({ initialClusterSize: 0 })))).toBe("bad-initial-cluster-size");
    expect(problemOf(() => resolveStatefulSetIdentity(input({ initialClusterSize: 16 })))).toBe("bad-initial-cluster-size");
    expect(problemOf(() => resolveStatefulSetIdentity(input({ peerPort: 0 })))).toBe("bad-port");
  });

  it("refuses templates that cannot name distinct members", () => {
    expect(problemOf(() => resolveStatefulSetIdentity(input({ peerHostTemplate: "raftmq.raftmq-headless" })))).toBe("bad-template");
    expect(problemOf(() => resolveStatefulSetIdentity(input({ peerHostTemplate: "raftmq-{ordnal}.x" })))).toBe("bad-template");
    expect(problemOf(() => resolveStatefulSetIdentity(input({ peerHostTemplate: "raftmq {ordinal}" })))).toBe("bad-template");
    expect(problemOf(() => resolveStatefulSetIdentity(input({ namespace: undefined })))).toBe("missing-namespace");
    expect(problemOf(() => resolveStatefulSetIdentity(input({ namespace: " " })))).toBe("missing-namespace");
  });

  it("refuses malformed host aliases", () => {
    for (const raw of ["raftmq-0", "raftmq-0=", "=127.0.0.1", "a=b=c", "raftmq-0=localhost", "raftmq-0=127.0.0.256", "bad name=127.0.0.1", "a=127.0.0.1,a=127.0.0.2"]) {
      expect(problemOf(() => parseHostAliases(raw)), raw).toBe("bad-host-alias");
    }
    expect(parseHostAliases("").size).toBe(0);
    expect(parseHostAliases("a=127.0.0.1,a=127.0.0.1").get("a")).toBe("127.0.0.1");
  });

  it("gives every incarnation of an ordinal a distinct id that maps back to it", () => {
    const seen = new Set<number>();
    for (const ordinal of [0, 1, 7, MAX_ORDINAL]) {
      for (const generation of [0, 1, 2, 50]) {
        const id = nodeIdOf(ordinal, generation);
        expect(seen.has(id)).toBe(false);
        seen.add(id);
        expect(ordinalOfNodeId(id)).toEqual({ ordinal, generation });
      }
    }
    expect(nodeIdOf(0, 1)).toBe(1 + ID_STRIDE);
  });
});

describe("startup decision", () => {
  const founder = { myId: 1, joinAsLearner: false };

  it("restarts as itself whenever the volume holds state, whatever the cluster says", () => {
    expect(decideStartup({ ...founder, dataDirEmpty: false, clusterReachable: true, memberIds: [1, 2, 3] })).toEqual({ kind: "restart" });
    expect(decideStartup({ ...founder, dataDirEmpty: false, clusterReachable: false, memberIds: [] })).toEqual({ kind: "restart" });
    expect(decideStartup({ myId: 4, joinAsLearner: true, dataDirEmpty: false, clusterReachable: false, memberIds: [] })).toEqual({ kind: "restart" });
  });

  it("bootstraps a founding ordinal when no live cluster answers: the first start", () => {
    expect(decideStartup({ ...founder, dataDirEmpty: true, clusterReachable: false, memberIds: [] })).toEqual({ kind: "bootstrap", nodeId: 1 });
  });

  it("replaces the old id of a founder whose volume was lost instead of voting with an empty log", () => {
    const d = decideStartup({ ...founder, dataDirEmpty: true, clusterReachable: true, memberIds: [3, 1, 2] });
    expect(d).toEqual({ kind: "replace", removeIds: [1], nodeId: nodeIdOf(0, 1) });
  });

  it("moves to the next generation when an earlier replacement also lost its volume", () => {
    const d = decideStartup({ myId: 2, joinAsLearner: false, dataDirEmpty: true, clusterReachable: true, memberIds: [1, nodeIdOf(1, 1), 3, 2] });
    expect(d).toEqual({ kind: "replace", removeIds: [2, nodeIdOf(1, 1)], nodeId: nodeIdOf(1, 2) });
  });

  it("never reuses a removed founder's id when it rejoins", () => {
    const d = decideStartup({ ...founder, dataDirEmpty: true, clusterReachable: true, memberIds: [2, 3] });
    expect(d).toEqual({ kind: "join", nodeId: nodeIdOf(0, 1) });
  });

  it("joins a new ordinal as a learner under its first id", () => {
    expect(decideStartup({ myId: 4, joinAsLearner: true, dataDirEmpty: true, clusterReachable: true, memberIds: [1, 2, 3] })).toEqual({ kind: "join", nodeId: 4 });
  });

  it("makes a new ordinal wait while no live cluster can add it", () => {
    expect(decideStartup({ myId: 4, joinAsLearner: true, dataDirEmpty: true, clusterReachable: false, memberIds: [] }).kind).toBe("wait");
  });

  it("replaces a joiner that was added and then lost its volume", () => {
    const d = decideStartup({ myId: 4, joinAsLearner: true, dataDirEmpty: true, clusterReachable: true, memberIds: [1, 2, 3, 4] });
    expect(d).toEqual({ kind: "replace", removeIds: [4], nodeId: nodeIdOf(3, 1) });
  });
});
