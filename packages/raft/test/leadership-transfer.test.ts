// Leadership transfer (Raft thesis §3.10): catch the target up, then TimeoutNow.
import { describe, expect, it } from "vitest";
import { MessageType, NotLeaderError, ProposalDroppedError, type RaftEvent } from "../src/index.ts";
import { Cluster, bytes } from "./cluster.ts";

describe("leadership transfer", () => {
  it("an up-to-date target gets TimeoutNow at once and wins the next term, skipping pre-vote and the lease", () => {
    const events: RaftEvent[] = [];
    const c = new Cluster([1, 2, 3], { logger: (e) => events.push(e) });
    c.stabilize();
    c.elect(1);
    c.tickAndStabilize(1);
    const term = c.raft(1).status().term;
    c.raft(1).transferLeadership(3);
    const sent = c.takeMessages();
    expect(sent.filter((m) => m.type === MessageType.MESSAGE_TYPE_TIMEOUT_NOW).map((m) => m.to)).toEqual([3]);
    for (const m of sent) c.deliver(m);
    c.stabilize();
    expect(c.leaders()).toEqual([3]);
    expect(c.raft(3).status().term).toBe(term + 1);
    expect(events).toContainEqual(expect.objectContaining({ kind: "election-started", id: 3, preVote: false, transfer: true }));
  });

  it("a lagging target is caught up first; the leader refuses proposals while transferring", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    c.isolate(3);
    for (let i = 0; i < 10; i++) c.raft(1).propose(bytes(`e${i}`));
    c.tickAndStabilize(1);
    c.raft(1).transferLeadership(3);
    expect(() => c.raft(1).propose(bytes("during"))).toThrow(ProposalDroppedError);
    expect(c.takeMessages().some((m) => m.type === MessageType.MESSAGE_TYPE_TIMEOUT_NOW)).toBe(false);
    c.heal();
    c.tickAndStabilize(3);
    expect(c.leaders()).toEqual([3]);
    expect(c.appliedData(3)).toHaveLength(10);
  });

  it("a transfer that does not finish within an election timeout is abandoned", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    c.isolate(3);
    c.raft(1).propose(bytes("e"));
    c.tickAndStabilize(1);
    c.raft(1).transferLeadership(3);
    c.tickAndStabilize(12);
    expect(c.leaders()).toEqual([1]);
    expect(c.raft(1).status().leadTransferee).toBe(0);
    expect(() => c.raft(1).propose(bytes("accepted again"))).not.toThrow();
  });

  it("only the leader transfers leadership", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    expect(() => c.raft(2).transferLeadership(3)).toThrow(NotLeaderError);
    expect(() => c.raft(2).transferLeadership(3)).toThrow(expect.objectContaining({ leaderId: 1 }));
  });
});
