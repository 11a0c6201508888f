// ReadIndex (Raft thesis §6.4): linearizable reads without writing to the log.
import { describe, expect, it } from "vitest";
import { MessageType } from "../src/index.ts";
import { Cluster, bytes } from "./cluster.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("ReadIndex", () => {
  it("the leader answers with its commit index after a heartbeat round confirms it still leads", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    c.raft(1).propose(bytes("w"));
    c.tickAndStabilize(1);
    c.raft(1).readIndex(bytes("r1"));
    const round = c.takeMessages();
    expect(round.filter((m) => m.type === MessageType.MESSAGE_TYPE_HEARTBEAT && text(m.context) === "r1")).toHaveLength(2);
    expect(c.node(1).readStates).toEqual([]); // not before the round
    for (const m of round) c.deliver(m);
    c.stabilize();
    expect(c.node(1).readStates.map((r) => [r.index, text(r.context)])).toEqual([[c.raft(1).status().commit, "r1"]]);
  });

  it("a follower's request goes to the leader and the answer comes back to the follower", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    c.tickAndStabilize(1);
    c.raft(2).readIndex(bytes("from-2"));
    c.stabilize();
    expect(c.node(2).readStates.map((r) => [r.index, text(r.context)])).toEqual([[c.raft(1).status().commit, "from-2"]]);
  });

  it("a leader cut off from the majority cannot confirm a read", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    c.tickAndStabilize(1);
    c.isolate(1);
    c.raft(1).readIndex(bytes("stale?"));
    c.tickAndStabilize(5);
    expect(c.node(1).readStates).toEqual([]);
  });

  it("a new leader answers only after it has committed an entry of its own term", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    // Appends are held back, so the new leader's no-op stays uncommitted for now.
    c.dropIf = (m) => m.type === MessageType.MESSAGE_TYPE_APPEND_ENTRIES;
    c.elect(1);
    expect(c.raft(1).status().role).toBe("leader");
    c.raft(1).readIndex(bytes("early"));
    c.tickAndStabilize(2);
    expect(c.node(1).readStates).toEqual([]);
    c.heal();
    c.tickAndStabilize(2);
    const { commit, term } = c.raft(1).status();
    expect(c.node(1).storage.term(commit)).toBe(term);
    expect(c.node(1).readStates.map((r) => [r.index, text(r.context)])).toEqual([[commit, "early"]]);
  });
});
