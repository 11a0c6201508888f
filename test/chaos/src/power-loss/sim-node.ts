// One simulated raftmq node: the Raft core, a disk that can lose unsynced writes, and the broker
// state, driven by the node loop production runs (ReadyLoop) on this disk, the simulated network
// and simulated time. Effects reach consumers only on the leader; confirms come from the apply.
import type { CommandResult, DeliverEffect, Effect } from "@raftmq/broker";
import {
  createPrng,
  type Entry,
  type LoopFaults,
  type Message,
  RaftNode,
  ReadyLoop,
  type Role,
  type Snapshot,
} from "@raftmq/raft";
import { NodeState } from "@raftmq/server/replicated-core";
import { NodeUnavailableError, OutcomeUnknownError } from "@raftmq/server/replicated-core";
import { type ProposalOutcome, ProposalPipeline } from "@raftmq/server/replicated-core";
import type { raftmq } from "@raftmq/proto";
import { SimBodies } from "./sim-bodies.ts";
import { type PowerLossDamage, SimDisk } from "./sim-disk.ts";

/**
 * A deliberately broken node, to show the checker catches what such a bug does:
 * - "ack-before-sync": the node loop takes a write as done once issued and syncs it in the
 *   background, so it acks, votes, counts itself and confirms before the data is durable (a disk
 *   cache that ignores flushes does the same); a power loss then drops entries a quorum was
 *   counted on.
 * - "send-before-sync": the node loop sends what the core holds back until the write is synced
 *   (acks, votes) together with the rest, before the write; a power loss then drops entries a
 *   leader counted as stored.
 * - "confirm-before-commit": the leader confirms a publish as soon as it is proposed.
 */
export type SimBug = "none" | "ack-before-sync" | "send-before-sync" | "confirm-before-commit";

export const SIM_BUGS: readonly SimBug[] = ["none", "ack-before-sync", "send-before-sync", "confirm-before-commit"];

function loopFaults(bug: SimBug): LoopFaults {
  switch (bug) {
    case "ack-before-sync":
      return { ackBeforeSync: true };
    case "send-before-sync":
      return { sendBeforeSync: true };
    case "none":
    case "confirm-before-commit":
      return {};
    default: {
      const never: never = bug;
      throw new Error(`unknown bug ${String(never)}`);
    }
  }
}

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
  readonly maxBatchCommands: number;
  readonly maxPendingCommands: number;
  readonly maxSessions: number;
  readonly maxSizePerMsg: number;
  readonly bug: SimBug;
}

/** What the node needs from the world around it. */
export interface NodeEnv {
  now(): number;
  random(): number;
  send(messages: readonly Message[]): void;
  /** The body stores of the other nodes that have power, for bodies a received snapshot needs. */
  peerBodies(): SimBodies[];
}

/** A consuming session's stream, as the leader sees it. */
export interface SessionSink {
  deliver(effect: DeliverEffect, body: Uint8Array | null): void;
  /** The stream ended: leadership moved, the node lost power, or the client closed it. */
  end(reason: string): void;
}

export type Done = (i: number, outcome: ProposalOutcome) => void;

export class NodeDownError extends Error {
  override name = "NodeDownError";
}

/** A write in flight and the loop's continuation once it is synced. */
interface PendingSync {
  readonly at: number;
  readonly done: (error: Error | null) => void;
}

const MAX_BATCH_BYTES = 1024 * 1024;

/** Background writes a node with the "ack-before-sync" bug may have in flight. */
const MAX_BACKGROUND_WRITES = 1024;

export class SimNode {
  readonly disk: SimDisk;
  /** Writes in flight, oldest first: one at a time but with the "ack-before-sync" bug. */
  #syncs: PendingSync[] = [];
  /** Work the loop deferred, run within the same simulated millisecond. */
  #deferred: (() => void)[] = [];
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
  #loop: ReadyLoop | null = null;
  #state: NodeState = NodeState.create([]);
  readonly bodies = new SimBodies();
  #pipeline: ProposalPipeline | null = null;
  readonly #sessions = new Map<string, SessionSink>();
  #sessionCounter = 0;
  #term = 0;
  #snapshotIndex = 0;
  #idleSince = 0;

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
    const snapshot = storage.snapshot();
    this.#state = snapshot.meta.index > 0 ? NodeState.restore(snapshot.data, []) : NodeState.create([]);
    this.appliedIndex = snapshot.meta.index;
    this.#snapshotIndex = snapshot.meta.index;
    this.bodies.put(this.#state.broker.takeNewBodies());
    this.#term = storage.initialState().hardState.term;
    this.role = "follower";
    this.leaderId = 0;
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
    this.#loop = new ReadyLoop({
      raft,
      storage: {
        lastIndex: () => storage.lastIndex(),
        write: (w, done) => {
          this.disk.write(w);
          this.#syncs.push({ at: this.#syncTime(), done });
        },
      },
      transport: { send: (messages) => this.env.send(messages) },
      // Simulated time stands still while a node works, so an apply never needs to yield.
      clock: { now: () => this.env.now(), defer: (fn) => this.#deferred.push(fn) },
      applySliceMs: Number.POSITIVE_INFINITY,
      faults: loopFaults(this.config.bug),
      host: {
        beforeReady: () => {
          if (this.role === "leader") this.#proposeQueued();
          else if (this.#pipeline?.hasQueued) this.#pipeline.failAll(new NodeUnavailableError("this node is no longer the leader"));
        },
        proposeWhileWriting: () => this.#proposeQueued(),
        softState: (soft) => this.#onSoftState(soft.role, soft.leaderId),
        beforeSend: (rd) => {
          if (rd.hardState !== null) this.#term = rd.hardState.term;
        },
        apply: (entry) => this.#apply(entry),
        restore: (snapshot, done) => {
          this.#restore(snapshot);
          done();
        },
        readStates: () => undefined,
        afterCycle: () => this.#maybeSnapshot(),
        fail: (error) => {
          throw error;
        },
      },
    });
  }

  /**
   * The power goes off. Clients see their connections drop; the disk keeps what was synced plus
   * the first `keepOps` parts of the write in flight (a torn write) when keepOps > 0.
   */
  powerLoss(keepOps: number): PowerLossDamage {
    const damage = this.#stop(keepOps, "the node lost power");
    // The body store's writes since its last sync are lost with the power; a crash keeps them.
    this.bodies.powerLoss();
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
    this.#loop?.stop();
    this.#loop = null;
    this.#raft = null;
    this.#syncs = [];
    this.#deferred = [];
    this.role = "follower";
    this.leaderId = 0;
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

  /** Runs the node loop until it waits for a sync or nothing is left to do. */
  drive(): void {
    this.#loop?.kick();
    this.#runDeferred();
  }

  /** Completes the writes whose sync is due; the loop goes on from each. */
  syncIfDue(): void {
    while (this.#raft !== null && (this.#syncs[0]?.at ?? Number.POSITIVE_INFINITY) <= this.env.now()) {
      const sync = this.#syncs.shift() as PendingSync;
      this.disk.sync();
      sync.done(null);
    }
    this.#runDeferred();
  }

  #runDeferred(): void {
    while (this.#deferred.length > 0 && this.#raft !== null) {
      const work = this.#deferred;
      this.#deferred = [];
      for (const fn of work) fn();
    }
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
      // Leadership moved in the meantime: the next leader's LeaderTookOffice downs the session.
    }
  }

  // ---- what the loop does with a Ready ----

  #syncTime(): number {
    const [lo, hi] = this.config.syncDelayMs;
    return this.env.now() + lo + Math.floor(this.env.random() * (hi - lo + 1));
  }

  #apply(entry: Entry): void {
    if (entry.index <= this.appliedIndex) return;
    if (entry.index !== this.appliedIndex + 1) throw new Error(`node ${this.id} applies entry ${entry.index} after ${this.appliedIndex}: a gap`);
    const out = this.#state.applyCommitted(entry);
    this.bodies.put(out.bodies);
    this.appliedIndex = entry.index;
    this.#pipeline?.applied(entry.index, entry.term, out.results);
    if (this.role === "leader" && out.effects.length > 0) this.#route(out.effects);
  }

  #route(effects: readonly Effect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case "deliver":
          {
            const sink = this.#sessions.get(effect.consumer.sessionId);
            if (sink === undefined) continue;
            const body = this.bodies.get(effect.message.bodyKey, effect.message.bodySize);
            if (body === null) this.bodies.missingReads++;
            sink.deliver(effect, body);
          }
          continue;
        case "consumerCancelled":
        case "deliveryPaused":
          // The workload never deletes queues, and its consumers ack manually (never no_ack).
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
    this.bodies.put(this.#state.broker.takeNewBodies());
    const live = this.#state.broker.liveBodies();
    this.bodies.collect(live);
    this.bodies.fetch(live, this.env.peerBodies());
    this.#pipeline?.skippedThrough(snapshot.meta.index);
  }

  /** Between cycles only: state machine, membership and stored log stand at the same index. */
  /** A leader's queued commands go into the core as entries. */
  #proposeQueued(): void {
    if (this.role === "leader") this.#pipeline?.flush();
  }

  #maybeSnapshot(): void {
    const every = this.config.snapshotEntries;
    const raft = this.#raft;
    if (every === 0 || raft === null || this.appliedIndex - this.#snapshotIndex < every) return;
    // A snapshot is written and synced on its own; that sync flushes any background writes of the
    // "ack-before-sync" bug too (a correct loop has none here, between cycles).
    const syncs = this.#syncs;
    this.#syncs = [];
    for (const sync of syncs) {
      this.disk.sync();
      sync.done(null);
    }
    // The stored commit index must not be below the snapshot after a restart.
    const hs = this.#loop?.takeUnsavedHardState() ?? null;
    if (hs !== null) this.disk.writeSynced({ hardState: hs, entries: [], snapshot: null });
    const index = this.appliedIndex;
    const live = this.#state.broker.liveBodies();
    this.bodies.sync();
    this.disk.snapshotAndCompact(index, raft.confState(), this.#state.snapshot(), index - this.config.snapshotKeepEntries);
    this.bodies.collect(live);
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
    }
    if (role === "leader" && !wasLeader) {
      this.#idleSince = this.env.now();
      this.#pipeline?.tookOffice(null);
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
