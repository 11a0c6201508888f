// §5.2 Leader election, with pre-vote and check-quorum.
import { describe, expect, it } from "vitest";
import { MemoryStorage, MessageType, RaftNode, type RaftEvent, createMessage, createPrng } from "../src/index.ts";
import { Cluster } from "./cluster.ts";

function ticksUntilElection(seed: number): number {
  const events: RaftEvent[] = [];
  const node = new RaftNode({ id: 1, peers: [1, 2, 3], random: createPrng(seed), logger: (e) => events.push(e) }, new MemoryStorage());
  for (let tick = 1; tick <= 100; tick++) {
    node.tick();
    if (events.some((e) => e.kind === "election-started")) return tick;
  }
  throw new Error("no election within 100 ticks");
}

describe("§5.2 leader election", () => {
  it("'If a follower receives no communication over a period of time called the election timeout, then it ... begins an election'; timeouts are randomized in [electionTick, 2*electionTick)", () => {
    const timeouts = Array.from({ length: 200 }, (_, seed) => ticksUntilElection(seed));
    for (const t of timeouts) {
      expect(t).toBeGreaterThanOrEqual(10);
      expect(t).toBeLessThan(20);
    }
    // Randomized, not a constant: split votes are rare because timeouts differ.
    expect(new Set(timeouts).size).toBeGreaterThan(5);
  });

  it("'A candidate wins an election if it receives votes from a majority of the servers in the full cluster for the same term'", () => {
    const c = new Cluster([1, 2, 3, 4, 5]);
    c.stabilize();
    // Only 1, 2, 3 can talk: still a majority of five.
    c.partition([1, 2, 3], [4], [5]);
    c.elect(1);
    expect(c.raft(1).status().role).toBe("leader");
    expect(c.leaders()).toEqual([1]);
  });

  it("a candidate that hears from no majority does not become leader", () => {
    const c = new Cluster([1, 2, 3, 4, 5], { preVote: false });
    c.stabilize();
    c.partition([1, 2], [3], [4], [5]);
    c.elect(1);
    expect(c.raft(1).status().role).toBe("candidate");
  });

  it("'Each server will vote for at most one candidate in a given term, on a first-come-first-served basis'", () => {
    const c = new Cluster([1, 2, 3], { preVote: false });
    c.stabilize();
    const voter = c.raft(3);
    const request = (from: number) => createMessage({ type: MessageType.MESSAGE_TYPE_REQUEST_VOTE, from, to: 3, term: 5, logIndex: 3, logTerm: 1 });
    voter.step(request(1));
    voter.step(request(2));
    const answers = c.takeMessages().filter((m) => m.type === MessageType.MESSAGE_TYPE_REQUEST_VOTE_RESPONSE);
    expect(answers.map((m) => [m.to, m.reject])).toEqual([
      [1, false],
      [2, true],
    ]);
    expect(voter.status().vote).toBe(1);
  });

  it("'If the leader's term is at least as large as the candidate's current term, then the candidate recognizes the leader as legitimate and returns to follower state'", () => {
    const c = new Cluster([1, 2, 3], { preVote: false });
    c.stabilize();
    c.isolate(2);
    c.raft(2).campaign();
    c.stabilize();
    const { role, term } = c.raft(2).status();
    expect(role).toBe("candidate");
    // Another node won this same term; its AppendEntries reaches the candidate.
    c.raft(2).step(createMessage({ type: MessageType.MESSAGE_TYPE_APPEND_ENTRIES, from: 3, to: 2, term, logIndex: 3, logTerm: 1 }));
    expect(c.raft(2).status()).toMatchObject({ role: "follower", term, leaderId: 3 });
  });
});

describe("pre-vote", () => {
  it("a node rejoining after a partition never disrupts a healthy leader", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    const term = c.raft(1).status().term;
    c.isolate(3);
    c.tickAndStabilize(100); // node 3 times out again and again, alone
    expect(c.raft(3).status().term).toBe(term); // pre-votes never bump its term
    c.heal();
    c.tickAndStabilize(30);
    expect(c.leaders()).toEqual([1]);
    expect(c.raft(1).status().term).toBe(term);
  });

  it("without pre-vote the same rejoin forces a new election (what pre-vote prevents)", () => {
    const c = new Cluster([1, 2, 3], { preVote: false, checkQuorum: false });
    c.stabilize();
    c.elect(1);
    const term = c.raft(1).status().term;
    c.isolate(3);
    c.tickAndStabilize(100);
    expect(c.raft(3).status().term).toBeGreaterThan(term);
    c.heal();
    c.tickAndStabilize(30);
    expect(c.raft(1).status().term).toBeGreaterThan(term);
  });

  it("followers that heard from a leader within the election timeout ignore (pre-)votes", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    c.tickAndStabilize(3);
    for (const type of [MessageType.MESSAGE_TYPE_PRE_VOTE, MessageType.MESSAGE_TYPE_REQUEST_VOTE]) {
      c.raft(2).step(createMessage({ type, from: 3, to: 2, term: 99, logIndex: 1000, logTerm: 99 }));
    }
    expect(c.takeMessages().filter((m) => m.to === 3)).toEqual([]);
    expect(c.raft(2).status().term).toBe(c.raft(1).status().term);
  });
});

describe("a leader's connections closing", () => {
  it("followers that both saw their leader's connection close elect a new leader without waiting out a timeout", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    c.tickAndStabilize(3);
    const term = c.raft(1).status().term;
    c.isolate(1); // the leader's process is gone
    expect(c.raft(2).leaderUnreachable(1)).toBe(true);
    expect(c.raft(3).leaderUnreachable(1)).toBe(true);
    expect(c.raft(2).campaignIfLeaderSilent(1)).toBe(true);
    c.stabilize(); // no tick at all
    expect(c.leaders().filter((id) => id !== 1)).toEqual([2]);
    expect(c.raft(3).status()).toMatchObject({ leaderId: 2, term: term + 1 });
  });

  it("one follower alone seeing the connection close does not disturb a live leader", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    c.tickAndStabilize(3);
    const term = c.raft(1).status().term;
    // Only the link between 1 and 2 is cut; 3 still hears from the leader.
    c.dropIf = (m) => (m.from === 1 && m.to === 2) || (m.from === 2 && m.to === 1);
    expect(c.raft(2).leaderUnreachable(1)).toBe(true);
    expect(c.raft(2).campaignIfLeaderSilent(1)).toBe(true);
    c.stabilize();
    c.tickAndStabilize(3);
    expect(c.leaders()).toEqual([1]);
    expect(c.raft(1).status().term).toBe(term);
    expect(c.raft(3).status()).toMatchObject({ leaderId: 1, term });
    // Once the link is back, node 2 follows the same leader in the same term.
    c.heal();
    c.tickAndStabilize(3);
    expect(c.raft(2).status()).toMatchObject({ leaderId: 1, term });
  });

  it("ranks the voters that may take over from a lost leader by id, so hosts can stagger their campaigns", () => {
    const c = new Cluster([1, 2, 3, 4, 5]);
    c.stabilize();
    c.elect(3);
    expect([1, 2, 4, 5].map((id) => c.raft(id).campaignRank(3))).toEqual([0, 1, 2, 3]);
    // Two followers that campaign at the same moment split the vote: nobody leads in the new term.
    const three = new Cluster([1, 2, 3]);
    three.stabilize();
    three.elect(1);
    three.isolate(1);
    for (const id of [2, 3]) expect(three.raft(id).leaderUnreachable(1)).toBe(true);
    for (const id of [2, 3]) expect(three.raft(id).campaignIfLeaderSilent(1)).toBe(true);
    three.stabilize();
    expect(three.leaders().filter((id) => id !== 1)).toEqual([]);
  });

  it("does nothing for a peer that is not the leader, on a leader, or once the leader was heard from again", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    expect(c.raft(2).leaderUnreachable(3)).toBe(false);
    expect(c.raft(1).leaderUnreachable(2)).toBe(false);
    expect(c.raft(2).campaignIfLeaderSilent(1)).toBe(false); // never marked: the lease holds
    expect(c.raft(2).leaderUnreachable(1)).toBe(true);
    c.tickAndStabilize(1); // a heartbeat from 1 arrives
    expect(c.raft(2).campaignIfLeaderSilent(1)).toBe(false);
    expect(c.leaders()).toEqual([1]);
  });
});

describe("check-quorum", () => {
  it("a leader that hears from no majority for an election timeout steps down", () => {
    const events: RaftEvent[] = [];
    const c = new Cluster([1, 2, 3], { logger: (e) => events.push(e) });
    c.stabilize();
    c.elect(1);
    c.isolate(1);
    c.tick([1], 25);
    c.stabilize();
    expect(c.raft(1).status().role).toBe("follower");
    expect(events).toContainEqual(expect.objectContaining({ kind: "stepped-down", id: 1, reason: "check-quorum" }));
  });

  it("a leader that keeps hearing from a majority stays leader", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    c.isolate(3);
    c.tickAndStabilize(50);
    expect(c.raft(1).status().role).toBe("leader");
  });
});
