// §5.3 log replication, §5.4 safety, and the replication machinery: conflict hints, flow control.
import { describe, expect, it } from "vitest";
import { MessageType, ProposalDroppedError, createMessage } from "../src/index.ts";
import { Cluster, bytes } from "./cluster.ts";

describe("§5.3 log replication", () => {
  it("'Once the entry has been safely replicated, the leader applies the entry to its state machine'; followers apply it too", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    c.raft(1).propose(bytes("a"));
    c.raft(1).propose(bytes("b"));
    c.stabilize();
    c.tickAndStabilize(1); // the heartbeat carries the new commit index
    for (const id of [1, 2, 3]) expect(c.appliedData(id)).toEqual(["a", "b"]);
  });

  it("an entry on a minority only is never committed or applied", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    c.isolate(1);
    const position = c.raft(1).propose(bytes("lost"));
    c.stabilize();
    expect(c.raft(1).status().commit).toBeLessThan(position.index);
    expect(c.appliedData(1)).toEqual([]);
  });

  // Without check-quorum there is no leader lease, so a test can elect a new leader at once.
  it("'the leader handles inconsistencies by forcing the followers' logs to duplicate its own'", () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.stabilize();
    c.elect(1);
    c.isolate(1);
    for (const s of ["x1", "x2", "x3"]) c.raft(1).propose(bytes(s)); // never committed
    c.stabilize();
    c.partition([1], [2, 3]);
    c.elect(2);
    c.raft(2).propose(bytes("y"));
    c.stabilize();
    c.heal();
    c.tickAndStabilize(3);
    expect(c.leaders()).toEqual([2]);
    for (const id of [1, 2, 3]) expect(c.appliedData(id)).toEqual(["y"]);
    // Node 1's stale entries are gone from its persisted log too.
    const s1 = c.node(1).storage;
    const s2 = c.node(2).storage;
    expect(s1.lastIndex()).toBe(s2.lastIndex());
    for (let i = 1; i <= s2.lastIndex(); i++) expect(s1.term(i)).toBe(s2.term(i));
  });

  it("conflict hints: a follower with a long divergent tail is found in a few round trips, not one per entry", () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.stabilize();
    c.elect(1);
    c.isolate(1);
    for (let i = 0; i < 50; i++) c.raft(1).propose(bytes(`stale-${i}`));
    c.stabilize();
    c.partition([1], [2, 3]);
    c.elect(2);
    for (let i = 0; i < 50; i++) c.raft(2).propose(bytes(`new-${i}`));
    c.stabilize();
    // A later leader starts probing node 1 from its own last index, past node 1's stale tail.
    c.elect(3);
    c.heal();
    let rejections = 0;
    const deliver = c.deliver.bind(c);
    c.deliver = (m) => {
      if (m.type === MessageType.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE && m.reject) {
        rejections++;
        expect(m.hintTerm).toBeGreaterThan(0);
      }
      deliver(m);
    };
    c.tickAndStabilize(3);
    expect(c.appliedData(1)).toEqual(c.appliedData(2));
    expect(c.appliedData(1)).toHaveLength(50);
    expect(rejections).toBeGreaterThan(0);
    expect(rejections).toBeLessThanOrEqual(3);
  });
});

describe("§5.4.1 election restriction", () => {
  it("'the voter denies its vote if its own log is more up-to-date than that of the candidate'", () => {
    const c = new Cluster([1, 2, 3], { preVote: false });
    c.stabilize();
    c.elect(1);
    c.isolate(3);
    c.raft(1).propose(bytes("committed"));
    c.stabilize();
    c.tickAndStabilize(1);
    expect(c.appliedData(2)).toEqual(["committed"]);
    // Node 1 goes away; node 3, which missed the entry, cannot win node 2's vote.
    c.partition([1], [2, 3]);
    c.tick([2], 25); // node 2 no longer hears from a leader
    c.raft(3).campaign();
    c.stabilize();
    expect(c.raft(3).status().role).not.toBe("leader");
    c.raft(2).campaign();
    c.stabilize();
    expect(c.raft(2).status().role).toBe("leader");
  });
});

describe("§5.4.2 committing entries from previous terms", () => {
  it("'Raft never commits log entries from previous terms by counting replicas. Only log entries from the leader's current term are committed by counting replicas'", () => {
    const c = new Cluster([1, 2, 3], { preVote: false, checkQuorum: false, maxSizePerMsg: 1 });
    c.stabilize();
    c.elect(1);
    c.isolate(1);
    const old = c.raft(1).propose(bytes("old")); // term-2 entry on node 1 alone
    c.stabilize();
    // Node 1 learns of a later term (3) and steps down; then it wins term 4 with node 2's vote.
    // Appends to node 2 are lost, so it never receives the old entry from node 1.
    c.raft(1).step(createMessage({ type: MessageType.MESSAGE_TYPE_HEARTBEAT_RESPONSE, from: 3, to: 1, term: 3 }));
    c.dropIf = (m) => m.to === 3 || m.from === 3 || m.type === MessageType.MESSAGE_TYPE_APPEND_ENTRIES;
    c.raft(1).campaign();
    c.stabilize();
    expect(c.raft(1).status()).toMatchObject({ role: "leader", term: 4 });
    const leader = c.raft(1);
    // Whatever was delivered above, make node 2 acknowledge exactly the old entry.
    const before = leader.status().commit;
    expect(before).toBeLessThan(old.index);
    leader.step(createMessage({ type: MessageType.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE, from: 2, to: 1, term: 4, logIndex: old.index }));
    expect(leader.status().commit).toBe(before); // a majority holds the term-2 entry, yet it is not committed
    const noop = leader.status().lastIndex;
    leader.step(createMessage({ type: MessageType.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE, from: 2, to: 1, term: 4, logIndex: noop }));
    expect(leader.status().commit).toBe(noop); // the term-4 entry commits, and the old one with it
  });

  it("a new leader appends an empty entry of its term so earlier entries can commit", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    const { lastIndex, term } = c.raft(1).status();
    const noop = c.node(1).storage.entries(lastIndex, lastIndex + 1, 1024)[0];
    expect(noop).toMatchObject({ term, index: lastIndex, type: 0 });
    expect(noop?.data.length).toBe(0);
  });
});

describe("flow control", () => {
  function replicatingCluster(options: ConstructorParameters<typeof Cluster>[1]) {
    const c = new Cluster([1, 2, 3], options);
    c.stabilize();
    c.elect(1);
    c.tickAndStabilize(1);
    expect(c.raft(1).status().progress.find((p) => p.id === 2)?.state).toBe("replicate");
    c.dropIf = (m) => m.from === 2 || m.to === 2; // node 2 stops answering
    return c;
  }

  it("the in-flight window is bounded in messages (maxInflightMsgs)", () => {
    const c = replicatingCluster({ maxInflightMsgs: 3 });
    let sentTo2 = 0;
    for (let i = 0; i < 10; i++) {
      c.raft(1).propose(bytes(`e${i}`));
      sentTo2 += c.takeMessages().filter((m) => m.to === 2 && m.type === MessageType.MESSAGE_TYPE_APPEND_ENTRIES).length;
    }
    expect(sentTo2).toBe(3);
  });

  it("the in-flight window is bounded in bytes (maxInflightBytes)", () => {
    const c = replicatingCluster({ maxInflightBytes: 100, maxSizePerMsg: 40 });
    let sentTo2 = 0;
    for (let i = 0; i < 10; i++) {
      c.raft(1).propose(new Uint8Array(40));
      sentTo2 += c.takeMessages().filter((m) => m.to === 2 && m.type === MessageType.MESSAGE_TYPE_APPEND_ENTRIES).length;
    }
    expect(sentTo2).toBe(3); // 40 + 40 + 40 bytes reach the 100-byte bound
  });

  it("AppendEntries batch entries up to maxSizePerMsg bytes", () => {
    const c = new Cluster([1, 2, 3], { maxSizePerMsg: 100 });
    c.stabilize();
    c.elect(1);
    c.tickAndStabilize(1);
    for (let i = 0; i < 10; i++) c.raft(1).propose(new Uint8Array(30));
    const appends = c.takeMessages().filter((m) => m.to === 2 && m.type === MessageType.MESSAGE_TYPE_APPEND_ENTRIES);
    expect(appends.map((m) => m.entries.length)).toEqual([3, 3, 3, 1]);
  });

  it("proposals are dropped once uncommitted entries reach maxUncommittedEntriesBytes", () => {
    const c = new Cluster([1, 2, 3], { maxUncommittedEntriesBytes: 100 });
    c.stabilize();
    c.elect(1);
    c.isolate(1);
    c.raft(1).propose(new Uint8Array(40));
    c.raft(1).propose(new Uint8Array(40));
    expect(() => c.raft(1).propose(new Uint8Array(40))).toThrow(ProposalDroppedError);
    try {
      c.raft(1).propose(new Uint8Array(40));
    } catch (error) {
      expect(error).toMatchObject({ reason: "uncommitted-limit" });
    }
    c.heal();
    c.tickAndStabilize(3);
    expect(() => c.raft(1).propose(new Uint8Array(40))).not.toThrow();
  });

  it("reportUnreachable moves a replicating follower back to probe", () => {
    const c = replicatingCluster({});
    c.raft(1).reportUnreachable(2);
    expect(c.raft(1).status().progress.find((p) => p.id === 2)?.state).toBe("probe");
  });
});
