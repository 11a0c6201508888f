// One simulated raftmq node: the Raft core, a disk that can lose unsynced writes, and the broker
// state, driven through each Ready the way the real node's driver does it (raft-driver.ts):
// write, then sync; a leader's appends leave during the write, everything else a node says
// waits for the sync; committed entries already on disk are applied during the write, the rest
// after it; effects reach consumers only on the leader; confirms come from the apply.
import type { CommandResult, DeliverEffect, Effect } from "@raftmq/broker";
import {
  createPrng,
  decodeConfChange,
  type Entry,
  EntryType,
  type HardState,
  type MemoryStorage,
  type Message,
  RaftNode,
  type Ready,
  type Role,
  type Snapshot,
} from "@raftmq/raft";
import { NodeState } from "@raftmq/server/replicated-core";
import { NodeUnavailableError, OutcomeUnknownError } from "@raftmq/server/replicated-core";
import { type ProposalOutcome, ProposalPipeline } from "@raftmq/server/replicated-core";
import type { raftmq } from "@raftmq/proto";
import { type PowerLossDamage, SimDisk } from "./sim-disk.ts";

/**
 * A deliberately broken node, to show the checker catches what such a bug does:
 * - "ack-before-sync": a node takes a write as done once issued and syncs it in the background,
 *   so it acks, votes, counts itself and confirms before the data is durable (a disk cache that
 *   ignores flushes does the same); a power loss then drops entries a quorum was counted on.
 * - "confirm-before-commit": the leader confirms a publish as soon as it is proposed.
 */
export type SimBug = "none" | "ack-before-sync" | "confirm-before-commit";

export const SIM_BUGS: readonly SimBug[] = ["none", "ack-before-sync", "confirm-before-commit"];

export interface NodeConfig {
  readonly peers: readonly number[];
  readonly electionTick: number;
  readonly heartbeatTick: number;
  /** Simulated ms between a write and its sync, drawn per write from [min, max]. */
  readonly syncDelayMs: readonly [number, number];
  /** Applied entries between snapshots; 0 never snapshots. */
  readonly snapshotEntries: number;
  readonly snapshotKeepEntries: number;
  readonly idleTickMs: number;
  readonly consumerGraceMs: number;
  readonly maxBatchCommands: number;
  readonly maxPendingCommands: number;
  readonly maxSessions: number;
  readonly maxSizePerMsg: number;
  /** Ready cycles one drive() runs at most; more waits for the next millisecond. */
  readonly maxCyclesPerDrive: number;
  readonly bug: SimBug;
}

/** What the node needs from the world around it. */
export interface NodeEnv {
  now(): number;
  random(): number;
  send(messages: readonly Message[]): void;
}

/** A consuming session's stream, as the leader sees it. */
export interface SessionSink {
  deliver(effect: DeliverEffect): void;
  /** The stream ended: leadership moved, the node lost power, or the client closed it. */
  end(reason: string): void;
}

export type Done = (i: number, outcome: ProposalOutcome) => void;

export class NodeDownError extends Error {
  override name = "NodeDownError";
}

interface PendingCycle {
  readonly rd: Ready;
  /** Messages that wait for the sync. */
  readonly held: readonly Message[];
  /** Committed entries that wait for the sync. */
  readonly rest: readonly Entry[];
  readonly restore: Snapshot | null;
  readonly syncAt: number;
}

const SWEEP_CHUNK = 256;
const MAX_BATCH_BYTES = 1024 * 1024;

/** Background writes a node with the "ack-before-sync" bug may have in flight. */
const MAX_BACKGROUND_WRITES = 1024;

export class SimNode {
  readonly disk: SimDisk;
  /** When each background write syncs ("ack-before-sync" only), oldest first. */
  #backgroundSyncs: number[] = [];
  boots = 0;
  powerLosses = 0;
  tornWrites = 0;
  /** Write parts lost to power losses (after any torn prefix was kept). */
  lostOps = 0;
  /** Times the node stopped itself on a broken invariant. */
  failures = 0;
  role: Role = "follower";
  leaderId = 0;
  appliedIndex = 0;
  #raft: RaftNode | null = null;
  /** The running process's view of the disk. */
  #storage: MemoryStorage | null = null;
  #state: NodeState = NodeState.create([]);
  #pipeline: ProposalPipeline | null = null;
  readonly #sessions = new Map<string, SessionSink>();
  #sessionCounter = 0;
  #term = 0;
  #vote = 0;
  #unsavedHardState: HardState | null = null;
  #snapshotIndex = 0;
  #cycle: PendingCycle | null = null;
  #idleSince = 0;
  #sweepAt: number | null = null;

  constructor(
    readonly id: number,
    private readonly config: NodeConfig,
    private readonly env: NodeEnv,
  ) {
    this.disk = new SimDisk(config.bug === "ack-before-sync" ? MAX_BACKGROUND_WRITES : 1);
  }

  get powered(): boolean {
    return this.#raft !== null;
  }

  get isLeader(): boolean {
    return this.#raft !== null && this.role === "leader";
  }

  get term(): number {
    return this.#term;
  }

  get commit(): number {
    return this.#raft?.status().commit ?? 0;
  }

  get state(): NodeState {
    return this.#state;
  }

  /** Powers on from what the disk synced; the broker is rebuilt from the snapshot and the log. */
  boot(): void {
    if (this.#raft !== null) throw new Error(`node ${this.id} booted while running`);
    const storage = this.disk.open();
    this.#storage = storage;
    const snapshot = storage.snapshot();
    this.#state = snapshot.meta.index > 0 ? NodeState.restore(snapshot.data, []) : NodeState.create([]);
    this.appliedIndex = snapshot.meta.index;
    this.#snapshotIndex = snapshot.meta.index;
    const { hardState } = storage.initialState();
    this.#term = hardState.term;
    this.#vote = hardState.vote;
    this.#unsavedHardState = null;
    this.role = "follower";
    this.leaderId = 0;
    this.#cycle = null;
    this.#sweepAt = null;
    this.#sessions.clear();
    this.boots++;
    const raft = new RaftNode(
      {
        id: this.id,
        peers: [...this.config.peers],
        electionTick: this.config.electionTick,
        heartbeatTick: this.config.heartbeatTick,
        maxSizePerMsg: this.config.maxSizePerMsg,
        applied: snapshot.meta.index,
        random: createPrng(Math.floor(this.env.random() * 2 ** 32)),
      },
      storage,
    );
    this.#raft = raft;
    this.#pipeline = new ProposalPipeline(
      { propose: (data) => raft.propose(data), now: () => this.env.now() },
      { maxBatchBytes: MAX_BATCH_BYTES, maxBatchCommands: this.config.maxBatchCommands, maxPendingCommands: this.config.maxPendingCommands },
    );
  }

  /**
   * The power goes off. Clients see their connections drop; the disk keeps what was synced plus
   * the first `keepOps` parts of the write in flight (a torn write) when keepOps > 0.
   */
  powerLoss(keepOps: number): PowerLossDamage {
    const damage = this.#stop(keepOps, "the node lost power");
    this.powerLosses++;
    if (damage.keptOps > 0) this.tornWrites++;
    this.lostOps += damage.unsyncedOps - damage.keptOps;
    return damage;
  }

  /**
   * The process stops on a failure it detected (a broken invariant), as the real node does. The
   * operating system still holds what the process wrote, synced or not.
   */
  crash(): void {
    this.#stop(this.disk.unsyncedOps(), "the node failed");
    this.failures++;
  }

  #stop(keepOps: number, reason: string): PowerLossDamage {
    if (this.#raft === null) throw new Error(`node ${this.id} stopped while off`);
    this.#raft = null;
    this.#storage = null;
    this.#backgroundSyncs = [];
    this.role = "follower";
    this.leaderId = 0;
    this.#cycle = null;
    const pipeline = this.#pipeline;
    this.#pipeline = null;
    this.#endSessions(reason);
    pipeline?.failAll(new NodeUnavailableError("connection lost"), new OutcomeUnknownError("connection lost"));
    return this.disk.powerLoss(keepOps);
  }

  tick(): void {
    const raft = this.#running();
    raft.tick();
    if (this.role === "leader") this.#leaderDuties();
  }

  step(message: Message): void {
    this.#running().step(message);
  }

  /** Runs Ready cycles until one waits for its sync or nothing is left to do. */
  drive(): void {
    for (let i = 0; i < this.config.maxCyclesPerDrive; i++) {
      const raft = this.#raft;
      const pipeline = this.#pipeline;
      if (raft === null || pipeline === null || this.#cycle !== null) return;
      if (this.role === "leader") pipeline.flush();
      else if (pipeline.hasQueued) pipeline.failAll(new NodeUnavailableError("this node is no longer the leader"));
      if (!raft.hasReady()) return;
      this.#startCycle(raft.ready());
    }
  }

  /** Completes the cycle whose sync is due. */
  syncIfDue(): void {
    while ((this.#backgroundSyncs[0] ?? Number.POSITIVE_INFINITY) <= this.env.now()) {
      this.#backgroundSyncs.shift();
      this.disk.sync();
    }
    const cycle = this.#cycle;
    if (cycle === null || this.#raft === null || cycle.syncAt > this.env.now()) return;
    this.disk.sync();
    this.#cycle = null;
    if (cycle.restore !== null) this.#restore(cycle.restore);
    this.#apply(cycle.rest);
    if (cycle.held.length > 0) this.env.send(cycle.held);
    this.#finish(cycle.rd);
  }

  /** Queues commands on the leader; `done` answers each once applied (or failed). */
  submit(commands: readonly raftmq.v1.Command.$Properties[], done: Done | null): void {
    const pipeline = this.#pipeline;
    if (this.#raft === null || pipeline === null) throw new NodeDownError(`node ${this.id} is off`);
    if (this.role !== "leader") throw new NodeUnavailableError(`node ${this.id} is not the leader`);
    if (this.config.bug === "confirm-before-commit" && done !== null && commands.every((c) => c.publish != null)) {
      pipeline.submit(commands, null);
      for (let i = 0; i < commands.length; i++) {
        const queue = commands[i]?.publish?.routingKey ?? "";
        done(i, { ok: true, result: { ok: true, kind: "publish", routedQueues: [queue], duplicate: false, returned: false } });
      }
      return;
    }
    pipeline.submit(commands, done);
  }

  /** Opens a consuming session on the leader; null off the leader or at the session limit. */
  openSession(sink: SessionSink): string | null {
    if (!this.isLeader || this.#sessions.size >= this.config.maxSessions) return null;
    // Unique per boot, so a session id never repeats across power cycles.
    const id = `n${this.id}.${this.boots}-${++this.#sessionCounter}`;
    this.#sessions.set(id, sink);
    return id;
  }

  hasSession(id: string): boolean {
    return this.#sessions.has(id);
  }

  /** The client closed its stream: the session goes down and what it held is requeued. */
  closeSession(id: string): void {
    if (!this.#sessions.delete(id) || !this.isLeader) return;
    try {
      this.submit([{ sessionDown: { sessionId: id } }], null);
    } catch {
      // Leadership moved in the meantime: the next leader's sweep downs the session.
    }
  }

  // ---- the Ready cycle ----

  #startCycle(rd: Ready): void {
    if (rd.softState !== null) this.#onSoftState(rd.softState.role, rd.softState.leaderId);
    const termOrVoteChanged = rd.hardState !== null && (rd.hardState.term !== this.#term || rd.hardState.vote !== this.#vote);
    if (rd.hardState !== null) {
      this.#unsavedHardState = rd.hardState;
      this.#term = rd.hardState.term;
      this.#vote = rd.hardState.vote;
    }
    if (this.config.bug === "ack-before-sync") {
      this.#cycleWithoutWaiting(rd);
      return;
    }
    if (rd.snapshot !== null) {
      this.disk.write({ hardState: this.#takeHardState(), entries: rd.entries, snapshot: rd.snapshot });
      this.#cycle = { rd, held: rd.messages, rest: rd.committedEntries, restore: rd.snapshot, syncAt: this.#syncTime() };
      return;
    }
    // A commit index alone is not written at once; it rides along with the next write.
    const mustWrite = rd.mustSync || rd.entries.length > 0;
    // A leader's appends may leave while it writes the same entries (Raft thesis §10.2.1): none of
    // them carries a commit index that counts this write. Acks and votes wait for the sync.
    const sendEarly = this.role === "leader" && !termOrVoteChanged;
    if (sendEarly && rd.messages.length > 0) this.env.send(rd.messages);
    const stored = this.#storage?.lastIndex() ?? 0;
    if (mustWrite) this.disk.write({ hardState: this.#takeHardState(), entries: rd.entries, snapshot: null });
    let split = 0;
    while (split < rd.committedEntries.length && (rd.committedEntries[split]?.index ?? 0) <= stored) split++;
    this.#apply(rd.committedEntries.slice(0, split));
    const rest = rd.committedEntries.slice(split);
    const held = sendEarly ? [] : rd.messages;
    if (!mustWrite) {
      this.#apply(rest);
      if (held.length > 0) this.env.send(held);
      this.#finish(rd);
      return;
    }
    this.#cycle = { rd, held, rest, restore: null, syncAt: this.#syncTime() };
  }

  /** The "ack-before-sync" bug: write, then act at once as if the write were durable. */
  #cycleWithoutWaiting(rd: Ready): void {
    if (rd.snapshot !== null || rd.mustSync || rd.entries.length > 0) {
      this.disk.write({ hardState: this.#takeHardState(), entries: rd.entries, snapshot: rd.snapshot });
      this.#backgroundSyncs.push(this.#syncTime());
    }
    if (rd.messages.length > 0) this.env.send(rd.messages);
    if (rd.snapshot !== null) this.#restore(rd.snapshot);
    this.#apply(rd.committedEntries);
    this.#finish(rd);
  }

  #finish(rd: Ready): void {
    this.#running().advance(rd);
    this.#maybeSnapshot();
  }

  #takeHardState(): HardState | null {
    const hs = this.#unsavedHardState;
    this.#unsavedHardState = null;
    return hs;
  }

  #syncTime(): number {
    const [lo, hi] = this.config.syncDelayMs;
    return this.env.now() + lo + Math.floor(this.env.random() * (hi - lo + 1));
  }

  #apply(entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.index <= this.appliedIndex) continue;
      if (entry.index !== this.appliedIndex + 1) throw new Error(`node ${this.id} applies entry ${entry.index} after ${this.appliedIndex}: a gap`);
      if (entry.type === EntryType.ENTRY_TYPE_CONF_CHANGE) {
        this.#state.applyConfChange(decodeConfChange(entry.data));
        this.appliedIndex = entry.index;
        this.#pipeline?.applied(entry.index, entry.term, []);
        continue;
      }
      const batch = this.#state.applyEntry(entry.index, entry.data);
      this.appliedIndex = entry.index;
      this.#pipeline?.applied(entry.index, entry.term, batch.results);
      if (this.role === "leader" && batch.effects.length > 0) this.#route(batch.effects);
    }
  }

  #route(effects: readonly Effect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case "deliver": {
          const slash = effect.consumerId.indexOf("/");
          const sink = slash < 0 ? undefined : this.#sessions.get(effect.consumerId.slice(0, slash));
          sink?.deliver(effect);
          continue;
        }
        case "consumerCancelled":
        case "return":
        case "queueDeleted":
          // The workload never deletes queues and publishes to existing ones only.
          continue;
        default: {
          const never: never = effect;
          throw new Error(`unknown effect ${JSON.stringify(never)}`);
        }
      }
    }
  }

  #restore(snapshot: Snapshot): void {
    this.#state = NodeState.restore(snapshot.data, []);
    this.appliedIndex = snapshot.meta.index;
    this.#snapshotIndex = snapshot.meta.index;
    this.#pipeline?.skippedThrough(snapshot.meta.index);
  }

  /** Between cycles only: state machine, membership and stored log stand at the same index. */
  #maybeSnapshot(): void {
    const every = this.config.snapshotEntries;
    const raft = this.#raft;
    if (every === 0 || raft === null || this.appliedIndex - this.#snapshotIndex < every) return;
    // A snapshot is written and synced on its own; that sync flushes any background writes too.
    this.disk.syncAll();
    this.#backgroundSyncs = [];
    // The stored commit index must not be below the snapshot after a restart.
    const hs = this.#takeHardState();
    if (hs !== null) this.disk.writeSynced({ hardState: hs, entries: [], snapshot: null });
    const index = this.appliedIndex;
    this.disk.snapshotAndCompact(index, raft.confState(), this.#state.snapshot(), index - this.config.snapshotKeepEntries);
    this.#snapshotIndex = index;
  }

  // ---- leadership ----

  #onSoftState(role: Role, leaderId: number): void {
    const wasLeader = this.role === "leader";
    this.role = role;
    this.leaderId = leaderId;
    if (wasLeader && role !== "leader") {
      this.#pipeline?.failAll(
        new NodeUnavailableError("this node lost leadership"),
        new OutcomeUnknownError("leadership changed before the command was applied"),
      );
      this.#endSessions("leadership moved");
      this.#sweepAt = null;
    }
    if (role === "leader" && !wasLeader) {
      this.#idleSince = this.env.now();
      this.#sweepAt = this.env.now() + this.config.consumerGraceMs;
    }
  }

  #leaderDuties(): void {
    const pipeline = this.#pipeline;
    if (pipeline === null) return;
    const now = this.env.now();
    if (now - Math.max(pipeline.lastProposalAt, this.#idleSince) >= this.config.idleTickMs && pipeline.pending === 0) {
      this.#idleSince = now;
      pipeline.submit([{ tick: {} }], null);
    }
    if (this.#sweepAt !== null && now >= this.#sweepAt) {
      this.#sweepAt = null;
      const orphans = this.#state.knownSessions().filter((id) => !this.#sessions.has(id));
      for (let i = 0; i < orphans.length; i += SWEEP_CHUNK) {
        pipeline.submit(
          orphans.slice(i, i + SWEEP_CHUNK).map((sessionId) => ({ sessionDown: { sessionId } })),
          null,
        );
      }
    }
  }

  #endSessions(reason: string): void {
    const sinks = [...this.#sessions.values()];
    this.#sessions.clear();
    for (const sink of sinks) sink.end(reason);
  }

  #running(): RaftNode {
    const raft = this.#raft;
    if (raft === null) throw new NodeDownError(`node ${this.id} is off`);
    return raft;
  }
}

/** A publish's confirm: what a producer learns from its outcome. */
export function publishVerdict(outcome: ProposalOutcome): { kind: "ok" } | { kind: "nack"; reason: string } | { kind: "unknown"; reason: string } {
  if (!outcome.ok) return { kind: "unknown", reason: `${outcome.error.name}: ${outcome.error.message}` };
  const r: CommandResult = outcome.result;
  if (!r.ok) return { kind: "nack", reason: r.error.message };
  if (r.kind !== "publish") return { kind: "unknown", reason: `a publish answered ${r.kind}` };
  if (r.rejectedBy !== undefined) return { kind: "nack", reason: `rejected by ${r.rejectedBy}` };
  if (r.returned || r.routedQueues.length === 0) return { kind: "nack", reason: "unroutable" };
  return { kind: "ok" };
}
