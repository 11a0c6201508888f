// §6 cluster membership changes: one server at a time, learners first, membership in the log.
import { describe, expect, it } from "vitest";
import { ConfChangeType, type ConfChange, MemoryStorage, ProposalDroppedError, type RaftEvent } from "../src/index.ts";
import { Cluster, bytes } from "./cluster.ts";

const change = (type: ConfChangeType, nodeId: number): ConfChange => ({ type, nodeId, context: new Uint8Array(0) });
const addLearner = (id: number) => change(ConfChangeType.CONF_CHANGE_TYPE_ADD_LEARNER, id);
const addVoter = (id: number) => change(ConfChangeType.CONF_CHANGE_TYPE_ADD_VOTER, id);
const remove = (id: number) => change(ConfChangeType.CONF_CHANGE_TYPE_REMOVE_NODE, id);

/** A 3-node cluster with leader 1 and an empty node 4 that is not a member yet. */
function clusterWithSpareNode(events: RaftEvent[] = []) {
  const c = new Cluster([1, 2, 3], { logger: (e) => events.push(e) });
  c.addNode(4, { peers: [] });
  c.stabilize();
  c.elect(1);
  return c;
}

// The rules defended here: changes add or remove one server at a time, so any two majorities of
// the old and new configurations overlap; a configuration travels in the log like any entry; new
// servers join as non-voting members until they have caught up (thesis §4.1-§4.2.1); a leader
// that is removed steps down once the change is committed.
describe("§6 membership changes", () => {
  it("a learner added through the log receives the whole log, is listed as learner everywhere, and is not counted for commit", () => {
    const c = clusterWithSpareNode();
    c.raft(1).proposeConfChange(addLearner(4));
    c.stabilize();
    c.raft(1).propose(bytes("for the learner too"));
    c.tickAndStabilize(3);
    for (const id of [1, 2, 3, 4]) expect(c.raft(id).confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(c.appliedData(4)).toEqual(["for the learner too"]);
    // With both other voters gone, the leader and the learner are not a majority.
    c.partition([1, 4], [2], [3]);
    const p = c.raft(1).propose(bytes("needs a voter majority"));
    c.stabilize();
    expect(c.raft(1).status().commit).toBeLessThan(p.index);
  });

  it("a learner ('non-voting member') never campaigns", () => {
    const events: RaftEvent[] = [];
    const c = clusterWithSpareNode(events);
    c.raft(1).proposeConfChange(addLearner(4));
    c.stabilize();
    c.isolate(4);
    c.tick([4], 200);
    c.stabilize();
    expect(events.filter((e) => e.kind === "election-started" && e.id === 4)).toEqual([]);
    expect(c.raft(4).status().role).toBe("follower");
  });

  it("a promoted learner (ADD_VOTER) counts for commit and may lead", () => {
    const c = clusterWithSpareNode();
    c.raft(1).proposeConfChange(addLearner(4));
    c.tickAndStabilize(2);
    c.raft(1).proposeConfChange(addVoter(4));
    c.tickAndStabilize(2);
    expect(c.raft(1).confState()).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    // 1, 2 and 4 are a majority of four only with 4 counted.
    c.partition([1, 2, 4], [3]);
    const p = c.raft(1).propose(bytes("x"));
    c.tickAndStabilize(1);
    expect(c.raft(1).status().commit).toBeGreaterThanOrEqual(p.index);
    c.raft(1).transferLeadership(4);
    c.tickAndStabilize(3);
    expect(c.leaders()).toEqual([4]);
  });

  it("removing a node shrinks the quorum; a removed leader steps down", () => {
    const events: RaftEvent[] = [];
    const c = new Cluster([1, 2, 3], { logger: (e) => events.push(e) });
    c.stabilize();
    c.elect(1);
    c.raft(1).proposeConfChange(remove(1));
    c.tickAndStabilize(2);
    expect(events).toContainEqual(expect.objectContaining({ kind: "stepped-down", id: 1, reason: "removed" }));
    expect(c.raft(1).status().role).toBe("follower");
    c.tickAndStabilize(40);
    const [leader] = c.leaders();
    expect(leader === 2 || leader === 3).toBe(true);
    expect(c.raft(leader ?? 0).confState()).toEqual({ voters: [2, 3], learners: [] });
    // The removed node is not needed for progress any more.
    c.isolate(1);
    const p = c.raft(leader ?? 0).propose(bytes("two voters suffice"));
    c.tickAndStabilize(2);
    expect(c.raft(leader ?? 0).status().commit).toBeGreaterThanOrEqual(p.index);
  });

  it("'add or remove a single server at a time': a second change waits until the first is applied", () => {
    const c = clusterWithSpareNode();
    c.raft(1).proposeConfChange(addLearner(4));
    expect(() => c.raft(1).proposeConfChange(remove(3))).toThrow(ProposalDroppedError);
    c.tickAndStabilize(2);
    expect(() => c.raft(1).proposeConfChange(remove(3))).not.toThrow();
  });

  it("invalid changes are refused before they reach the log", () => {
    const c = clusterWithSpareNode();
    for (const bad of [addVoter(2), remove(9), addLearner(2)]) {
      expect(() => c.raft(1).proposeConfChange(bad)).toThrow(expect.objectContaining({ reason: "invalid-conf-change" }));
    }
  });

  it("on restart membership comes from the snapshot plus committed conf changes in the log, and none is applied twice", () => {
    const events: RaftEvent[] = [];
    const c = clusterWithSpareNode(events);
    c.raft(1).proposeConfChange(addLearner(4));
    c.tickAndStabilize(2);
    // Node 2 snapshots after the first change and compacts its log; the second change stays in the log.
    const storage = c.node(2).storage;
    const snapIndex = c.raft(2).status().applied;
    storage.createSnapshot(snapIndex, c.raft(2).confState(), new Uint8Array(0));
    storage.compact(snapIndex);
    c.raft(1).proposeConfChange(remove(3));
    c.tickAndStabilize(2);
    const before = events.filter((e) => e.kind === "conf-change-applied" && e.id === 2).length;
    const restarted = c.restart(2);
    expect(restarted.raft.confState()).toEqual({ voters: [1, 2], learners: [4] });
    expect(storage).toBe(restarted.storage);
    c.tickAndStabilize(3);
    expect(events.filter((e) => e.kind === "conf-change-applied" && e.id === 2).length).toBe(before);
    // The committed entries are handed out again for the application, conf changes included.
    expect(restarted.applied.some((e) => e.type === 1)).toBe(true);
  });

  it("a node bootstrapped from a snapshot takes its membership from the snapshot's ConfState", () => {
    const storage = new MemoryStorage();
    storage.applySnapshot({ meta: { index: 10, term: 3, confState: { voters: [1, 2, 5], learners: [7] } }, data: new Uint8Array(0) });
    storage.setHardState({ term: 3, vote: 0, commit: 10 });
    const c = new Cluster([]);
    const node = c.addNode(5, { peers: [9] }, storage);
    expect(node.raft.confState()).toEqual({ voters: [1, 2, 5], learners: [7] });
    expect(node.raft.status()).toMatchObject({ commit: 10, applied: 10, lastIndex: 10 });
  });
});
