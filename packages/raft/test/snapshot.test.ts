// §7 log compaction: snapshots in storage, InstallSnapshot in chunks to followers behind them.
import { describe, expect, it } from "vitest";
import { MessageType, type RaftEvent } from "../src/index.ts";
import { Cluster, bytes } from "./cluster.ts";

describe("§7 log compaction", () => {
  it("'the leader must occasionally send snapshots to followers that lag behind': chunked InstallSnapshot, assembled by the follower", () => {
    const events: RaftEvent[] = [];
    const c = new Cluster([1, 2, 3], { maxSnapshotChunkBytes: 10, logger: (e) => events.push(e) });
    c.stabilize();
    c.elect(1);
    c.isolate(3);
    for (let i = 0; i < 20; i++) c.raft(1).propose(bytes(`e${i}`));
    c.tickAndStabilize(2);
    // The application on node 1 snapshots its state and drops the log below it.
    const leader = c.node(1);
    const index = leader.raft.status().applied;
    const state = bytes("state machine image of 35 bytes...");
    leader.storage.createSnapshot(index, leader.raft.confState(), state);
    leader.storage.compact(index);
    expect(leader.storage.firstIndex()).toBe(index + 1);

    const chunks: number[] = [];
    const deliver = c.deliver.bind(c);
    c.deliver = (m) => {
      if (m.type === MessageType.MESSAGE_TYPE_INSTALL_SNAPSHOT && m.snapshot) chunks.push(m.snapshot.data.length);
      deliver(m);
    };
    c.heal();
    c.raft(1).propose(bytes("after the snapshot"));
    c.tickAndStabilize(10);

    expect(chunks).toEqual([10, 10, 10, 4]);
    expect(events).toContainEqual(expect.objectContaining({ kind: "snapshot-sent", id: 1, to: 3, index }));
    expect(events).toContainEqual(expect.objectContaining({ kind: "snapshot-installed", id: 3, index }));
    const follower = c.node(3);
    expect(follower.storage.snapshot().data).toEqual(state);
    expect(follower.storage.snapshot().meta.confState).toEqual({ voters: [1, 2, 3], learners: [] });
    // Entries after the snapshot arrive by AppendEntries and are applied.
    expect(c.appliedData(3)).toEqual(["after the snapshot"]);
    expect(follower.raft.status().applied).toBe(c.raft(1).status().applied);
    expect(c.raft(1).status().progress.find((p) => p.id === 3)?.state).toBe("replicate");
  });

  it("a lost chunk is sent again and the transfer completes", () => {
    const c = new Cluster([1, 2, 3], { maxSnapshotChunkBytes: 4 });
    c.stabilize();
    c.elect(1);
    c.isolate(3);
    for (let i = 0; i < 5; i++) c.raft(1).propose(bytes(`e${i}`));
    c.tickAndStabilize(2);
    const leader = c.node(1);
    const index = leader.raft.status().applied;
    leader.storage.createSnapshot(index, leader.raft.confState(), bytes("0123456789abcdef"));
    leader.storage.compact(index);
    let dropped = 0;
    c.dropIf = (m) => {
      // Drop the second chunk once.
      if (m.type === MessageType.MESSAGE_TYPE_INSTALL_SNAPSHOT && m.snapshot?.offset === 4 && dropped === 0) {
        dropped++;
        return true;
      }
      return false;
    };
    c.tickAndStabilize(10);
    expect(dropped).toBe(1);
    expect(c.node(3).storage.snapshot().data).toEqual(bytes("0123456789abcdef"));
    expect(c.node(3).raft.status().commit).toBe(c.raft(1).status().commit);
  });

  it("a follower restarted from a snapshot resumes from it", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    c.elect(1);
    for (let i = 0; i < 5; i++) c.raft(1).propose(bytes(`e${i}`));
    c.tickAndStabilize(2);
    const node = c.node(2);
    const index = node.raft.status().applied;
    node.storage.createSnapshot(index, node.raft.confState(), bytes("image"));
    node.storage.compact(index);
    const restarted = c.restart(2);
    expect(restarted.raft.status()).toMatchObject({ applied: index, commit: index });
    c.raft(1).propose(bytes("next"));
    c.tickAndStabilize(2);
    expect(c.appliedData(2)).toEqual(["next"]);
  });
});
