// The node loop (ReadyLoop) on a disk whose writes complete when the test says so: what leaves
// before a write is synced, what waits for it, and what is applied meanwhile. Production and both
// simulators run this loop; these tests pin its ordering rules one at a time.
import { describe, expect, it } from "vitest";
import {
  ConfChangeType,
  createMessage,
  createPrng,
  type Entry,
  EntryType,
  type LoopFaults,
  type LoopWrite,
  MemoryStorage,
  type Message,
  MessageType,
  RaftNode,
  ReadyLoop,
} from "../src/index.ts";

const T = MessageType;

interface Rig {
  raft: RaftNode;
  loop: ReadyLoop;
  storage: MemoryStorage;
  sent: Message[];
  applied: number[];
  writes: LoopWrite[];
  /** Completes the oldest write in flight, as its sync returning, then runs what the loop deferred. */
  sync(runDeferred?: boolean): void;
  /** Runs what the loop deferred (its first pass, apply slices). */
  runDeferred(): void;
  clock: { ms: number };
  fails: Error[];
}

function rig(id: number, options: { faults?: LoopFaults; applySliceMs?: number; storage?: MemoryStorage } = {}): Rig {
  const storage = options.storage ?? new MemoryStorage();
  const raft = new RaftNode({ id, peers: [1, 2, 3], electionTick: 10, heartbeatTick: 1, random: createPrng(id) }, storage);
  const sent: Message[] = [];
  const applied: number[] = [];
  const writes: LoopWrite[] = [];
  const pending: { write: LoopWrite; done: (error: Error | null) => void }[] = [];
  let deferred: (() => void)[] = [];
  const clock = { ms: 0 };
  const fails: Error[] = [];
  const loop = new ReadyLoop({
    raft,
    storage: {
      lastIndex: () => storage.lastIndex(),
      write: (w, done) => {
        writes.push(w);
        pending.push({ write: w, done });
      },
    },
    transport: { send: (messages) => sent.push(...messages) },
    clock: { now: () => clock.ms, defer: (fn) => deferred.push(fn) },
    applySliceMs: options.applySliceMs ?? Number.POSITIVE_INFINITY,
    faults: options.faults,
    host: {
      beforeReady: () => undefined,
      proposeWhileWriting: () => undefined,
      softState: () => undefined,
      beforeSend: () => undefined,
      apply: (entry) => {
        if (entry.index > (applied[applied.length - 1] ?? 0)) applied.push(entry.index);
        // Each apply takes a simulated millisecond, so a slice limit is reached.
        clock.ms++;
      },
      restore: (_snapshot, done) => done(),
      readStates: () => undefined,
      afterCycle: () => undefined,
      fail: (error) => fails.push(error),
    },
  });
  const r: Rig = {
    raft,
    loop,
    storage,
    sent,
    applied,
    writes,
    clock,
    fails,
    sync(runDeferred = true) {
      const head = pending.shift();
      if (head === undefined) throw new Error("no write in flight");
      if (head.write.snapshot !== null) storage.applySnapshot(head.write.snapshot);
      if (head.write.entries.length > 0) storage.append(head.write.entries);
      if (head.write.hardState !== null) storage.setHardState(head.write.hardState);
      head.done(null);
      if (runDeferred) r.runDeferred();
    },
    runDeferred() {
      while (deferred.length > 0) {
        const work = deferred;
        deferred = [];
        for (const fn of work) fn();
      }
    },
  };
  // A new node's first Ready writes its bootstrap configuration (entries 1-3, committed).
  loop.kick();
  r.runDeferred();
  r.sync();
  sent.length = 0;
  applied.length = 0;
  writes.length = 0;
  return r;
}

/** The bootstrap log: three configuration entries in term 1. */
const BOOT = { index: 3, term: 1 };

const entry = (index: number, term = 1): Entry => ({ index, term, type: EntryType.ENTRY_TYPE_NORMAL, data: new Uint8Array([index]) });

function append(from: number, to: number, entries: Entry[], commit: number, prev = BOOT): Message {
  return createMessage({ type: T.MESSAGE_TYPE_APPEND_ENTRIES, from, to, term: 1, logIndex: prev.index, logTerm: prev.term, entries, commit });
}

describe("a follower's answers wait for its write", () => {
  it("acknowledges appended entries only once they are synced", () => {
    const f = rig(2);
    f.raft.step(append(1, 2, [entry(4), entry(5)], 3));
    f.loop.kick();
    f.runDeferred();
    expect(f.writes).toHaveLength(1);
    expect(f.writes[0]?.entries.map((e) => e.index)).toEqual([4, 5]);
    expect(f.sent).toEqual([]);
    f.sync();
    expect(f.sent.map((m) => [m.type, m.logIndex])).toEqual([[T.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE, 5]]);
    expect(f.fails).toEqual([]);
  });

  it("grants a vote only once the hard state recording it is synced", () => {
    const f = rig(3);
    f.raft.step(createMessage({ type: T.MESSAGE_TYPE_REQUEST_VOTE, from: 1, to: 3, term: 2, logIndex: BOOT.index, logTerm: BOOT.term }));
    f.loop.kick();
    f.runDeferred();
    expect(f.writes[0]?.hardState).toMatchObject({ term: 2, vote: 1 });
    expect(f.sent).toEqual([]);
    f.sync();
    expect(f.sent.map((m) => [m.type, m.reject])).toEqual([[T.MESSAGE_TYPE_REQUEST_VOTE_RESPONSE, false]]);
  });

  it("applies committed entries already stored while the new ones are written, the rest after the sync", () => {
    const f = rig(2);
    f.raft.step(append(1, 2, [entry(4), entry(5)], 3));
    f.loop.kick();
    f.runDeferred();
    f.sync();
    // Entries 4-5 are stored; the leader commits through 6 and sends 6-7.
    f.raft.step(append(1, 2, [entry(6), entry(7)], 6, { index: 5, term: 1 }));
    f.loop.kick();
    f.runDeferred();
    expect(f.applied).toEqual([4, 5]);
    f.sync();
    expect(f.applied).toEqual([4, 5, 6]);
  });

  it("with the ack-before-sync fault, acks and applies before the write is durable", () => {
    const f = rig(2, { faults: { ackBeforeSync: true } });
    f.raft.step(append(1, 2, [entry(4), entry(5)], 5));
    f.loop.kick();
    f.runDeferred();
    expect(f.sent.map((m) => m.type)).toEqual([T.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE]);
    expect(f.applied).toEqual([4, 5]);
  });

  it("with the send-before-sync fault, acks before the write is durable but still applies after it", () => {
    const f = rig(2, { faults: { sendBeforeSync: true } });
    f.raft.step(append(1, 2, [entry(4), entry(5)], 5));
    f.loop.kick();
    f.runDeferred();
    expect(f.sent.map((m) => m.type)).toEqual([T.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE]);
    expect(f.applied).toEqual([]);
    f.sync();
    expect(f.applied).toEqual([4, 5]);
  });
});

describe("a leader's appends lead its own write (Raft thesis §10.2.1)", () => {
  const kinds = (messages: Message[]) => messages.map((m) => m.type);

  it("a candidate asks for votes only once its new term and self-vote are synced; a leader's appends do not wait", () => {
    const l = rig(1);
    l.raft.campaign();
    l.loop.kick();
    l.runDeferred();
    // A pre-vote changes no term and no vote: nothing to write, the requests leave at once.
    expect(l.writes).toHaveLength(0);
    expect(kinds(l.sent)).toEqual([T.MESSAGE_TYPE_PRE_VOTE, T.MESSAGE_TYPE_PRE_VOTE]);
    l.sent.length = 0;
    l.raft.step(createMessage({ type: T.MESSAGE_TYPE_PRE_VOTE_RESPONSE, from: 2, to: 1, term: 2 }));
    l.loop.kick();
    l.runDeferred();
    expect(l.writes[0]?.hardState).toMatchObject({ term: 2, vote: 1 });
    expect(l.sent).toEqual([]);
    l.sync();
    expect(kinds(l.sent)).toEqual([T.MESSAGE_TYPE_REQUEST_VOTE, T.MESSAGE_TYPE_REQUEST_VOTE]);
    l.sent.length = 0;
    l.raft.step(createMessage({ type: T.MESSAGE_TYPE_REQUEST_VOTE_RESPONSE, from: 2, to: 1, term: 2 }));
    l.loop.kick();
    l.runDeferred();
    expect(l.raft.status().role).toBe("leader");
    // The leader's no-op entry is being written; its appends are already on their way.
    expect(l.loop.busy).toBe(true);
    const noop = l.raft.status().lastIndex;
    const appends = l.sent.filter((m) => m.type === T.MESSAGE_TYPE_APPEND_ENTRIES && m.entries.some((e) => e.index === noop));
    expect(appends.map((m) => m.to).sort()).toEqual([2, 3]);
    l.sync();
    expect(l.fails).toEqual([]);
  });
});

describe("what commits while a write is in flight", () => {
  /** Node 1 elected in term 2, its no-op committed and applied, nothing in flight. */
  function leader(): Rig {
    const l = rig(1);
    l.raft.campaign();
    l.loop.kick();
    l.runDeferred();
    l.raft.step(createMessage({ type: T.MESSAGE_TYPE_PRE_VOTE_RESPONSE, from: 2, to: 1, term: 2 }));
    l.loop.kick();
    l.runDeferred();
    l.sync();
    l.raft.step(createMessage({ type: T.MESSAGE_TYPE_REQUEST_VOTE_RESPONSE, from: 2, to: 1, term: 2 }));
    l.loop.kick();
    l.runDeferred();
    l.sync();
    ack(l, l.raft.status().lastIndex);
    expect(l.applied).toEqual([l.raft.status().lastIndex]);
    expect(l.loop.busy).toBe(false);
    l.applied.length = 0;
    l.sent.length = 0;
    return l;
  }

  function ack(l: Rig, index: number): void {
    l.raft.step(createMessage({ type: T.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE, from: 2, to: 1, term: 2, logIndex: index }));
    l.loop.kick();
    l.runDeferred();
  }

  function propose(l: Rig, byte: number): number {
    const { index } = l.raft.propose(new Uint8Array([byte]));
    l.loop.kick();
    l.runDeferred();
    return index;
  }

  it("a leader applies an entry acked during a later entry's write without waiting for that write", () => {
    const l = leader();
    const a = propose(l, 1);
    l.sync();
    const b = propose(l, 2);
    expect(l.writes[l.writes.length - 1]?.entries.map((e) => e.index)).toEqual([b]);
    // B's write is in flight when the ack that commits A arrives.
    ack(l, a);
    expect(l.applied).toEqual([a]);
    expect(l.loop.busy).toBe(true);
    // The commit index that covers A is not in any Ready yet: it waits to ride along with the
    // next write, so that a snapshot at A's index finds it on disk.
    const pending = l.loop.takeUnsavedHardState();
    expect(pending?.commit).toBe(a);
    expect(pending).toMatchObject({ term: 2, vote: 1 });
    l.sync();
    ack(l, b);
    expect(l.applied).toEqual([a, b]);
    expect(l.raft.status().applied).toBe(b);
    expect(l.fails).toEqual([]);
  });

  it("a leader's appends of an entry proposed during a write leave before that write ends", () => {
    const l = leader();
    const a = propose(l, 1);
    l.sent.length = 0;
    const b = propose(l, 2);
    // A's write is still in flight; B is not written yet, but its appends are on their way.
    expect(l.writes[l.writes.length - 1]?.entries.map((e) => e.index)).toEqual([a]);
    // Node 2 has acked, so its progress replicates; node 3 never answered and is probed instead.
    const appendsOfB = () => l.sent.filter((m) => m.type === T.MESSAGE_TYPE_APPEND_ENTRIES && m.to === 2 && m.entries.some((e) => e.index === b));
    expect(appendsOfB()).toHaveLength(1);
    l.sync();
    // B is written by the next cycle, and its appends are not sent twice.
    expect(l.writes[l.writes.length - 1]?.entries.map((e) => e.index)).toEqual([b]);
    expect(appendsOfB()).toHaveLength(1);
    l.sync();
    expect(l.fails).toEqual([]);
  });

  it("an entry not yet on disk waits for its write even once committed", () => {
    const l = leader();
    const a = propose(l, 1);
    // The follower's ack commits A while A's own write is in flight: A is applied after the sync.
    ack(l, a);
    expect(l.applied).toEqual([]);
    l.sync();
    expect(l.applied).toEqual([a]);
    expect(l.fails).toEqual([]);
  });

  it("a conf change waits for a Ready of its own, and what follows it too", () => {
    const l = leader();
    const c = l.raft.proposeConfChange({ type: ConfChangeType.CONF_CHANGE_TYPE_ADD_LEARNER, nodeId: 4, context: new Uint8Array(0) }).index;
    l.loop.kick();
    l.runDeferred();
    l.sync();
    const a = propose(l, 1);
    l.sync();
    const b = propose(l, 2);
    ack(l, a);
    expect(l.applied).toEqual([]);
    l.sync();
    expect(l.applied).toEqual([c, a]);
    ack(l, b);
    expect(l.applied).toEqual([c, a, b]);
    expect(l.fails).toEqual([]);
  });
});

describe("long applies yield", () => {
  it("hands the rest of a long apply to the clock's defer once a slice is used up", () => {
    const f = rig(2, { applySliceMs: 3 });
    const entries = Array.from({ length: 10 }, (_, i) => entry(i + 4));
    f.raft.step(append(1, 2, entries, 13));
    f.loop.kick();
    f.runDeferred();
    expect(f.applied).toEqual([]);
    f.sync(false);
    // Each apply takes a millisecond: the first slice ends after the fourth.
    expect(f.applied).toEqual([4, 5, 6, 7]);
    expect(f.loop.inCycle).toBe(true);
    f.runDeferred();
    expect(f.applied).toEqual(entries.map((e) => e.index));
    expect(f.loop.busy).toBe(false);
  });
});
