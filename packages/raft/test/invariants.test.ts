// The core stops loudly (RaftInvariantError) rather than corrupt state, and enforces the
// Ready/advance protocol.
import { describe, expect, it } from "vitest";
import { EntryType, MemoryStorage, MessageType, RaftInvariantError, RaftNode, RaftUsageError, createMessage, createPrng } from "../src/index.ts";
import { RaftLog } from "../src/raft-log.ts";
import { Cluster } from "./cluster.ts";

const entry = (index: number, term: number) => ({ index, term, type: EntryType.ENTRY_TYPE_NORMAL, data: new Uint8Array(0) });

describe("invariants", () => {
  it("no entry at or below commit is ever truncated", () => {
    const storage = new MemoryStorage();
    storage.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
    const log = new RaftLog(storage, 1);
    log.commitTo(2);
    expect(() => log.maybeAppend(1, 1, 2, [entry(2, 2)])).toThrow(RaftInvariantError);
    // A conflict above commit is fine.
    expect(log.maybeAppend(2, 1, 2, [entry(3, 2)])).toBe(3);
  });

  it("commit never passes the last index", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    const follower = c.raft(2);
    const last = follower.status().lastIndex;
    expect(() => follower.step(createMessage({ type: MessageType.MESSAGE_TYPE_HEARTBEAT, from: 1, to: 2, term: 5, commit: last + 10 }))).toThrow(
      RaftInvariantError,
    );
  });

  it("applied never passes commit", () => {
    const storage = new MemoryStorage();
    storage.append([entry(1, 1), entry(2, 1)]);
    storage.setHardState({ term: 1, vote: 0, commit: 1 });
    expect(() => new RaftNode({ id: 1, applied: 2, random: createPrng(1) }, storage)).toThrow(RaftInvariantError);
  });

  it("term never decreases", () => {
    const storage = new MemoryStorage();
    const log = new RaftLog(storage, 1);
    expect(log.committed).toBe(0);
    const node = new RaftNode({ id: 1, peers: [1, 2, 3], random: createPrng(1) }, storage);
    node.step(createMessage({ type: MessageType.MESSAGE_TYPE_HEARTBEAT, from: 2, to: 1, term: 7, commit: 0 }));
    expect(node.status().term).toBe(7);
    node.step(createMessage({ type: MessageType.MESSAGE_TYPE_HEARTBEAT, from: 3, to: 1, term: 3, commit: 0 }));
    expect(node.status().term).toBe(7);
  });

  it("ready() twice without advance() is refused", () => {
    const storage = new MemoryStorage();
    const node = new RaftNode({ id: 1, peers: [1, 2, 3], random: createPrng(1) }, storage);
    const rd = node.ready();
    expect(() => node.ready()).toThrow(RaftUsageError);
    storage.append(rd.entries);
    node.advance(rd);
    expect(() => node.advance(rd)).toThrow(RaftUsageError);
  });

  it("advancing past entries the application did not persist stops the node", () => {
    const node = new RaftNode({ id: 1, peers: [1, 2, 3], random: createPrng(1) }, new MemoryStorage());
    const rd = node.ready();
    expect(rd.entries).toHaveLength(3);
    expect(() => node.advance(rd)).toThrow(RaftInvariantError);
  });

  it("messages for another node, from itself, or without a term are ignored", () => {
    const c = new Cluster([1, 2, 3]);
    c.stabilize();
    const node = c.raft(1);
    const before = node.status();
    node.step(createMessage({ type: MessageType.MESSAGE_TYPE_APPEND_ENTRIES, from: 2, to: 9, term: 50 }));
    node.step(createMessage({ type: MessageType.MESSAGE_TYPE_APPEND_ENTRIES, from: 1, to: 1, term: 50 }));
    node.step(createMessage({ type: MessageType.MESSAGE_TYPE_APPEND_ENTRIES, from: 2, to: 1, term: 0 }));
    expect(node.status()).toEqual(before);
  });
});
