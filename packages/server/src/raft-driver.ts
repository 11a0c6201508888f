// Runs one Raft group: ticks the core from the node's clock and runs the node loop (ReadyLoop, the
// same one the simulators run) on LevelDB and the peer transport it is given. Around the loop it
// keeps the state machine and wires the jobs that have units of their own (LocalSnapshots,
// LinearizableReads, LeadershipWatch, MembershipWaiters, PeerBook, learner promotion). Proposals
// that arrive while a write is in flight wait and leave together in the next entry.
import type { BodyRef, Broker, Effect } from "@raftmq/broker";
import { raftmq } from "@raftmq/proto";
import {
  ConfChangeType,
  decodeConfChange,
  type Entry,
  EntryType,
  type LoopWrite,
  type Message,
  type ProposalPosition,
  ProposalDroppedError,
  RaftNode,
  type RaftEvent,
  type RaftStatus,
  ReadyLoop,
  type Role,
  type Snapshot,
} from "@raftmq/raft";
import type { BodyStore, RaftStorage } from "@raftmq/storage";
import type { Logger } from "pino";
import type { ClusterMemberAddress, NodeConfig } from "./node-config.ts";
import { LeadershipWatch } from "./leadership-watch.ts";
import { learnerToPromote } from "./learner-promotion.ts";
import { LinearizableReads } from "./linearizable-reads.ts";
import { type Cancel, type NodeClock, systemClock, yieldTo } from "./node-clock.ts";
import { InvalidRequestError, NodeStoppingError, NodeUnavailableError, OutcomeUnknownError } from "./node-errors.ts";
import type { NodeMetrics } from "./node-metrics.ts";
import { type AddressChange, NodeState } from "./node-state.ts";
import { PeerBook } from "./peer-book.ts";
import type { PeerStats } from "./peer-transport.ts";
import { type ProposalOutcome, ProposalPipeline } from "./proposal-pipeline.ts";
import { SnapshotPolicy } from "./snapshot-policy.ts";
import { LocalSnapshots } from "./local-snapshots.ts";
import { BodyReadAhead, READ_AHEAD_MESSAGES } from "./body-read-ahead.ts";
import { BodyKeeper } from "./body-keeper.ts";
import { MembershipWaiters } from "./membership-waiters.ts";

/** Longest stretch of applying before the loop yields to I/O. */
const APPLY_SLICE_MS = 8;
/**
 * Longest stretch of encoding a snapshot before the loop yields to I/O. Shorter than an apply
 * slice: the encoding is not on any client's path, and every slice of it delays the messages in
 * flight (8 ms slices showed as 14-31 ms stalls at 5,000 msg/s while V8 had not yet optimized
 * the encoder).
 */
const SNAPSHOT_SLICE_MS = 2;
/** A read not confirmed by the leader within this many election timeouts fails. */
const READ_TIMEOUT_ELECTIONS = 2;
/** Bytes of committed entries handed out per Ready: bounds one apply pass. */
const MAX_COMMITTED_BYTES_PER_READY = 4 * 1024 * 1024;

export interface DriverHooks {
  /** Leadership or the known leader changed. */
  leaderChanged(leaderId: number, isLeader: boolean, term: number): void;
  /** Effects of applied commands; called on the leader only. */
  effects(effects: Effect[]): void;
  /** Users, vhosts or permissions changed in the entry just applied (or a snapshot just restored). */
  accessChanged?(): void;
  /** This node was removed from the cluster. */
  removed(): void;
  /** Storage failed or an invariant broke: the node must stop. */
  fatal(error: Error): void;
}

/** What the driver needs of the peer transport; the node builds the transport and passes it in. */
export interface DriverTransport {
  sendNow(messages: Message[]): void;
  setPeer(id: number, address: string): void;
  removePeer(id: number): void;
  hasPeer(id: number): boolean;
  stats(): Record<number, PeerStats>;
  close(): Promise<void>;
}

/** The broker's read side, for queries answered from this node's state. */
export type BrokerView = Pick<
  Broker,
  | "queueInfo"
  | "listQueues"
  | "listExchanges"
  | "listBindings"
  | "lastTimestamp"
  | "nextDeadline"
  | "settings"
  | "machineVersion"
  | "user"
  | "users"
  | "userCount"
  | "vhosts"
  | "hasVhost"
  | "permissions"
  | "listPermissions"
  | "accessVersion"
>;

export interface DriverOptions {
  config: NodeConfig;
  storage: RaftStorage;
  /** Where message bodies are kept (apart from the state and the log). */
  bodies: BodyStore;
  /** Fetches bodies a restored snapshot refers to and the body store lacks, from a peer. */
  fetchBodies?: (keys: number[]) => Promise<void>;
  transport: DriverTransport;
  logger: Logger;
  hooks: DriverHooks;
  metrics?: NodeMetrics;
  random?: () => number;
  /** The system's clock unless a test brings its own. */
  clock?: NodeClock;
}

export class RaftDriver {
  private readonly raft: RaftNode;
  private readonly transport: DriverTransport;
  readonly pipeline: ProposalPipeline;
  private state: NodeState;
  role: Role = "follower";
  leaderId = 0;
  term = 0;
  appliedIndex: number;
  private readonly config: NodeConfig;
  private readonly storage: RaftStorage;
  readonly bodies: BodyStore;
  /** Bodies read ahead of their delivery to this node's consumers. */
  readonly readAhead: BodyReadAhead;
  readonly bodyKeeper: BodyKeeper;
  private readonly log: Logger;
  private readonly hooks: DriverHooks;
  private readonly metrics: NodeMetrics | undefined;
  private readonly loop: ReadyLoop;
  private readonly clock: NodeClock;
  private stopTicker: Cancel | null = null;
  private stopped = false;
  private failed: Error | null = null;
  private readonly reads: LinearizableReads;
  private readonly membershipWaiters = new MembershipWaiters();
  private readonly leadership: LeadershipWatch;
  private readonly peers: PeerBook;
  private idleSince = 0;
  private readonly random: () => number;
  /** The leader whose streams were seen to close, while the campaign that follows is pending. */
  private lostLeader = 0;
  /** Proposals already added to the metrics counter. */
  private countedProposals = 0;
  /** When the next automatic snapshot is due and how much log it keeps. */
  private readonly snapshotPolicy: SnapshotPolicy;
  private readonly snapshots: LocalSnapshots;
  private readonly startedAt = performance.now();
  /** The stored snapshot's index and commit index when the node started: the entries between are applied again at start. */
  private readonly replayFrom: number;
  private readonly replayThrough: number;

  constructor(options: DriverOptions) {
    const { config, storage, logger, hooks } = options;
    this.config = config;
    this.storage = storage;
    this.log = logger;
    this.hooks = hooks;
    this.random = options.random ?? Math.random;
    this.metrics = options.metrics;
    this.clock = options.clock ?? systemClock;
    this.leadership = new LeadershipWatch(this.clock);
    const snapshot = storage.snapshot();
    this.state = snapshot.meta.index > 0 ? NodeState.restore(snapshot.data, config.initialCluster) : NodeState.create(config.initialCluster);
    if (snapshot.meta.index > 0) {
      logger.info(
        { event: "state-loaded", index: snapshot.meta.index, bytes: snapshot.data.length, ms: Math.round(performance.now() - this.startedAt) },
        "state restored from the stored snapshot",
      );
    }
    this.appliedIndex = snapshot.meta.index;
    this.bodies = options.bodies;
    this.readAhead = new BodyReadAhead(this.bodies);
    this.bodyKeeper = new BodyKeeper({ store: this.bodies, log: logger, ...(options.fetchBodies && { fetchMissing: options.fetchBodies }) });
    this.bodies.put(this.state.broker.takeNewBodies());
    if (snapshot.meta.index > 0) void this.bodyKeeper.restored(this.state.broker.liveBodies(), "start");
    this.snapshotPolicy = new SnapshotPolicy(
      { entries: config.snapshotEntries, bytes: config.snapshotBytes, keepEntries: config.snapshotKeepEntries, keepBytes: config.snapshotKeepBytes },
      snapshot.data.length,
      () => this.random(),
    );
    this.snapshots = new LocalSnapshots({
      host: {
        appliedIndex: () => this.appliedIndex,
        betweenCycles: () => !this.stopped && !this.loop.inCycle,
        capture: () => ({ confState: this.raft.confState(), capture: this.state.captureSnapshot(), bodies: this.state.broker.liveBodies() }),
        persistHardState: () => this.persistHardState(),
        bodiesDurable: () => this.bodies.sync(),
        stored: (bodies) => void this.bodyKeeper.snapshotStored(bodies),
        fail: (error) => this.fail(error),
      },
      storage,
      policy: this.snapshotPolicy,
      clock: this.clock,
      log: logger,
      metrics: this.metrics,
      sliceMs: SNAPSHOT_SLICE_MS,
      index: snapshot.meta.index,
    });
    this.term = storage.initialState().hardState.term;
    this.replayFrom = snapshot.meta.index;
    this.replayThrough = storage.initialState().hardState.commit;
    const bootstrap = !config.join;
    this.raft = new RaftNode(
      {
        id: config.nodeId,
        peers: bootstrap ? config.initialCluster.map((m) => m.id) : [],
        electionTick: config.electionTicks,
        heartbeatTick: config.heartbeatTicks,
        maxCommittedBytesPerReady: MAX_COMMITTED_BYTES_PER_READY,
        applied: snapshot.meta.index,
        random: this.random,
        logger: (event) => this.onRaftEvent(event),
      },
      storage,
    );
    this.transport = options.transport;
    this.peers = new PeerBook(config.nodeId, options.transport);
    this.reads = new LinearizableReads(
      { readIndex: (context) => this.raft.readIndex(context), appliedIndex: () => this.appliedIndex, leaderClientAddress: () => this.leaderClientAddress() },
      this.clock,
      config.tickMs * config.electionTicks * READ_TIMEOUT_ELECTIONS,
    );
    this.pipeline = new ProposalPipeline(
      { propose: (data) => this.raft.propose(data), now: () => this.clock.now() },
      { maxBatchBytes: config.maxBatchBytes, maxBatchCommands: config.maxBatchCommands, maxPendingCommands: config.maxPendingCommands },
    );
    this.loop = new ReadyLoop({
      raft: this.raft,
      storage: { lastIndex: () => storage.lastIndex(), write: (w, done) => this.write(w).then(() => done(null), done) },
      transport: { send: (messages) => this.transport.sendNow(messages) },
      clock: { now: () => this.clock.elapsed(), defer: (fn) => this.clock.defer(fn) },
      applySliceMs: APPLY_SLICE_MS,
      host: {
        beforeReady: () => this.beforeReady(),
        proposeWhileWriting: () => this.proposeQueued(),
        softState: (soft) => this.onSoftState(soft.role, soft.leaderId),
        beforeSend: (rd) => {
          if (rd.hardState !== null) this.term = rd.hardState.term;
          // Addresses of members joining in this Ready must be known before its messages leave.
          for (const e of rd.committedEntries) if (e.type === EntryType.ENTRY_TYPE_CONF_CHANGE) this.peers.prepare(decodeConfChange(e.data));
        },
        apply: (entry) => this.applyOne(entry),
        restore: (snapshot, done) => {
          this.restore(snapshot).then(done, (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))));
        },
        readStates: (states) => this.reads.confirmed(states),
        afterCycle: () => this.snapshots.maybeStart(),
        fail: (error) => this.fail(error),
      },
    });
    this.syncPeers();
  }

  start(): void {
    if (this.replayThrough <= this.replayFrom) this.replayed();
    this.idleSince = this.clock.now();
    this.stopTicker = this.clock.every(this.config.tickMs, () => this.onTick());
    this.kick();
  }

  /** A message's body, from the body store (BodyMissingError or CorruptionError if it cannot be had). */
  readBody(ref: BodyRef): Uint8Array {
    return this.readAhead.take(ref.bodyKey) ?? this.bodies.read(ref.bodyKey, ref.bodySize);
  }

  /** Reads ahead the bodies of the next messages the consumer's queue will hand it. */
  readAheadFor(consumerId: string): void {
    this.readAhead.want(this.state.broker.upcomingBodies(consumerId, READ_AHEAD_MESSAGES));
  }

  /** True while a snapshot taken of the state is being encoded, piece by piece. */
  get encodingSnapshotPieces(): boolean {
    return this.snapshots.encodingPieces;
  }

  /** Index of the newest snapshot stored or restored. */
  get snapshotIndex(): number {
    return this.snapshots.index;
  }

  get isLeader(): boolean {
    return this.role === "leader";
  }

  get healthy(): boolean {
    return this.failed === null && this.storage.health().ok;
  }

  /** The leader's client address, or "" when no leader is known. */
  leaderClientAddress(): string {
    return this.leaderId === 0 ? "" : (this.state.address(this.leaderId)?.clientAddress ?? "");
  }

  leaderPeerAddress(): string {
    return this.leaderId === 0 ? "" : (this.state.address(this.leaderId)?.peerAddress ?? "");
  }

  /** Resolves once a leader is known, or after `timeoutMs`. */
  async waitForLeader(timeoutMs: number): Promise<void> {
    if (!this.stopped) await this.leadership.waitFor((id) => id !== 0, timeoutMs);
  }

  /** The core's view: term, role, commit, membership and, on the leader, each member's progress. */
  status(): RaftStatus {
    return this.raft.status();
  }

  /** Members of the address book (every node the log has named, with its addresses). */
  members(): ClusterMemberAddress[] {
    return this.state.members();
  }

  address(id: number): ClusterMemberAddress | undefined {
    return this.state.address(id);
  }

  /** The broker's state as this node has applied it. */
  get broker(): BrokerView {
    return this.state.broker;
  }

  peerStats(): Record<number, PeerStats> {
    return this.transport.stats();
  }

  /**
   * Hands leadership to `to` (0: the most caught-up other voter) and resolves with the new
   * leader's id once this node has seen it take over; rejects after `timeoutMs`.
   */
  async transferLeadership(to: number, timeoutMs: number): Promise<number> {
    const status = this.raft.status();
    if (status.role !== "leader") throw new NodeUnavailableError("this node is not the leader", this.leaderClientAddress());
    if (to === 0) {
      const best = status.progress.filter((p) => !p.isLearner && p.id !== status.id).sort((a, b) => b.match - a.match || a.id - b.id)[0];
      if (best === undefined) throw new InvalidRequestError("there is no other voter to transfer leadership to");
      to = best.id;
    }
    if (to === status.id) return to;
    const target = to;
    this.raft.transferLeadership(target);
    this.kick();
    if (await this.leadership.waitFor((id) => id === target, timeoutMs)) return target;
    throw new NodeUnavailableError(`leadership did not move to node ${target} in time; the current leader is ${this.leaderId || "unknown"}`, this.leaderClientAddress());
  }

  /**
   * Queues commands for the next entry (leader only); `done` answers each command. Throws
   * NodeUnavailableError off the leader and OverloadedError past the pending bound.
   */
  submit(commands: readonly raftmq.v1.Command.$Properties[], done: ((i: number, outcome: ProposalOutcome) => void) | null): void {
    if (this.stopped) throw new NodeStoppingError("the node is stopping");
    if (this.role !== "leader") throw new NodeUnavailableError("this node is not the leader", this.leaderClientAddress());
    this.pipeline.submit(commands, done);
    this.metrics?.proposedCommands.inc(commands.length);
    this.kick();
  }

  /** Schedules a pass of the node loop; cheap to call often. */
  kick(): void {
    if (!this.stopped) this.loop.kick();
  }

  /**
   * Resolves once this node may serve a linearizable read: the leader confirmed its commit
   * index and this node has applied through it.
   */
  linearizableRead(): Promise<void> {
    if (this.stopped) return Promise.reject(new NodeStoppingError("the node is stopping"));
    if (this.leaderId === 0) return Promise.reject(new NodeUnavailableError("no leader is known, so a read cannot be confirmed"));
    const read = this.reads.read();
    this.kick();
    return read;
  }

  /** Proposes a conf change and resolves once it is applied. */
  changeMembership(type: ConfChangeType, nodeId: number, member: ClusterMemberAddress | null): Promise<void> {
    const context = member === null ? new Uint8Array(0) : raftmq.v1.Member.encode({ id: member.id, peerAddress: member.peerAddress, clientAddress: member.clientAddress }).finish();
    let position: ProposalPosition;
    try {
      position = this.raft.proposeConfChange({ type, nodeId, context });
    } catch (err) {
      return Promise.reject(err);
    }
    this.kick();
    return this.membershipWaiters.wait(position.index, position.term);
  }

  /** Takes a snapshot at the applied index now; resolves to its index. */
  triggerSnapshot(): Promise<number> {
    if (this.stopped) return Promise.reject(new NodeStoppingError("the node is stopping"));
    const taken = this.snapshots.request();
    this.kick();
    return taken;
  }

  /** Stops ticking and cycling; fails every waiter. Does not close storage or the transport. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopTicker?.();
    const error = new NodeStoppingError("the node is stopping");
    this.pipeline.failAll(error, new OutcomeUnknownError("the node stopped before the command was applied"));
    this.reads.failAll(error);
    this.membershipWaiters.failAll(error);
    this.snapshots.failWaiters(error);
    this.leadership.close();
    // Let a cycle in flight finish its write, then keep the last commit index.
    this.loop.stop();
    await this.loop.whenIdle();
    if (this.failed === null) await this.persistHardState().catch((err: unknown) => this.log.warn({ err }, "could not write the last hard state"));
    await this.transport.close();
  }

  // ---- around the loop ----

  /** Before each Ready: a snapshot may start (between cycles), and the leader's proposals go into the core. */
  private beforeReady(): void {
    this.snapshots.maybeStart();
    if (this.role === "leader") {
      this.proposeQueued();
    } else if (this.pipeline.hasQueued) {
      this.pipeline.failAll(
        new NodeUnavailableError("this node is no longer the leader", this.leaderClientAddress()),
        new OutcomeUnknownError("leadership changed before the command was applied"),
      );
    }
  }

  /** A leader's queued commands go into the core as entries. */
  private proposeQueued(): void {
    if (this.role !== "leader") return;
    this.pipeline.flush();
    if (this.pipeline.proposals > this.countedProposals) {
      this.metrics?.proposals.inc(this.pipeline.proposals - this.countedProposals);
      this.countedProposals = this.pipeline.proposals;
    }
  }

  /** One synced write of a Ready. A received snapshot waits until the state a local snapshot is written from is no longer needed. */
  private async write(w: LoopWrite): Promise<void> {
    if (w.snapshot !== null) await this.snapshots.settled();
    const started = performance.now();
    await this.storage.save(w);
    this.metrics?.persistSeconds.observe((performance.now() - started) / 1000);
  }

  /** Writes the hard state handed out and not written yet (a commit index alone rides along with the next write). */
  private async persistHardState(): Promise<void> {
    const hardState = this.loop.takeUnsavedHardState();
    if (hardState !== null) await this.write({ hardState, entries: [], snapshot: null });
  }

  private applyOne(entry: Entry): void {
    if (entry.index <= this.appliedIndex) return;
    if (entry.index !== this.appliedIndex + 1) throw new Error(`applying entry ${entry.index} after ${this.appliedIndex}: a gap`);
    const out = this.state.applyCommitted(entry);
    this.bodies.putApplied(out.bodies);
    this.appliedIndex = entry.index;
    this.pipeline.applied(entry.index, entry.term, out.results);
    if (entry.type === EntryType.ENTRY_TYPE_CONF_CHANGE) {
      this.membershipWaiters.applied(entry.index, entry.term);
      if (out.addressChange !== null) this.onAddressChange(out.addressChange, entry.index);
    } else if (this.role === "leader" && out.effects.length > 0) {
      this.hooks.effects(out.effects);
    }
    this.snapshotPolicy.applied(entry.data.length);
    this.snapshotPolicy.bodiesRead(this.bodies.readBytes);
    this.metrics?.appliedEntries.inc();
    this.reads.applied(this.appliedIndex);
    this.noticeAccessChange();
    if (entry.index === this.replayThrough) this.replayed();
  }

  private replayed(): void {
    const { skipped } = this.bodies;
    this.log.info(
      { event: "log-replayed", entries: this.replayThrough - this.replayFrom, through: this.replayThrough, bodiesAlreadyStored: skipped, ms: Math.round(performance.now() - this.startedAt) },
      "applied the entries committed before the node stopped",
    );
  }

  private seenAccessVersion = 0;

  private noticeAccessChange(): void {
    const version = this.broker.accessVersion;
    if (version === this.seenAccessVersion) return;
    this.seenAccessVersion = version;
    this.hooks.accessChanged?.();
  }

  private onAddressChange(change: AddressChange, index: number): void {
    switch (change.kind) {
      case "added":
        this.log.info({ event: "membership", index, change: change.learner ? "add-learner" : "add-voter", member: change.member }, `member ${change.member.id} added`);
        break;
      case "promoted":
        this.log.info({ event: "membership", index, change: "promote", member: change.id }, `member ${change.id} promoted to voter`);
        break;
      case "removed":
        this.log.info({ event: "membership", index, change: "remove", member: change.id }, `member ${change.id} removed`);
        if (change.id === this.config.nodeId) {
          this.hooks.removed();
          return;
        }
        break;
      default: {
        const never: never = change;
        throw new Error(`unknown address change ${JSON.stringify(never)}`);
      }
    }
    this.syncPeers();
  }

  private syncPeers(): void {
    this.peers.sync(this.state.members(), this.raft.confState());
  }

  private async restore(snapshot: Snapshot): Promise<void> {
    const started = performance.now();
    const steps = NodeState.restoring(snapshot.data, this.config.initialCluster);
    let sliceStart = this.clock.elapsed();
    let step = steps.next();
    while (step.done !== true) {
      if (this.clock.elapsed() - sliceStart > APPLY_SLICE_MS) {
        // A follower restoring keeps receiving (heartbeats reset its election timer in step()).
        await yieldTo(this.clock);
        if (this.stopped) return;
        sliceStart = this.clock.elapsed();
      }
      step = steps.next();
    }
    this.state = step.value;
    this.appliedIndex = snapshot.meta.index;
    this.bodies.put(this.state.broker.takeNewBodies());
    void this.bodyKeeper.restored(this.state.broker.liveBodies(), "received");
    this.noticeAccessChange();
    this.snapshots.restored(snapshot.meta.index, snapshot.data.length);
    this.pipeline.skippedThrough(snapshot.meta.index);
    this.syncPeers();
    this.log.info(
      { event: "snapshot-restored", index: snapshot.meta.index, term: snapshot.meta.term, bytes: snapshot.data.length, ms: Math.round(performance.now() - started) },
      "restored from snapshot",
    );
    this.reads.applied(this.appliedIndex);
  }

  // ---- inputs ----

  /** Raft messages from a peer. */
  receive(messages: Message[]): void {
    if (this.stopped) return;
    try {
      for (const m of messages) this.raft.step(m);
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.kick();
  }

  /**
   * A stream a peer opened to this node closed. When that peer is this follower's leader (whose
   * process died, or whose connection was cut), the follower stops vouching for its lease and
   * starts a pre-vote instead of waiting out its election timeout, after a delay set by its
   * campaign rank: half a tick per voter of a lower id, plus a random quarter tick. The
   * followers that saw the same close then campaign one after another, and the first to win
   * has the others follow it instead of splitting the vote (which cost a whole election timeout
   * in about one kill in ten when every follower waited a random part of one tick). Pre-vote and
   * check-quorum still decide: voters that still hear from a live leader ignore the candidate.
   */
  peerStreamClosed(peerId: number): void {
    if (this.stopped || this.lostLeader === peerId) return;
    try {
      if (!this.raft.leaderUnreachable(peerId)) return;
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.lostLeader = peerId;
    const delayMs = (this.raft.campaignRank(peerId) * this.config.tickMs) / 2 + (this.random() * this.config.tickMs) / 4;
    this.clock.after(Math.floor(delayMs), () => {
      this.lostLeader = 0;
      if (this.stopped) return;
      // Someone else may have won meanwhile, or the leader was heard from again.
      try {
        if (!this.raft.campaignIfLeaderSilent(peerId)) return;
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.log.info({ event: "leader-stream-closed", leader: peerId, term: this.raft.status().term }, `the stream from leader ${peerId} closed: campaigning`);
      this.kick();
    });
    this.kick();
  }

  /** The transport could not reach a peer: the leader probes it again, and a snapshot to it starts over. */
  unreachable(peerId: number): void {
    if (this.stopped || this.role !== "leader") return;
    this.raft.reportUnreachable(peerId);
    const progress = this.raft.status().progress.find((p) => p.id === peerId);
    if (progress?.state === "snapshot") this.raft.reportSnapshot(peerId, false);
  }

  private onTick(): void {
    if (this.stopped) return;
    try {
      this.raft.tick();
      if (this.role === "leader") this.leaderDuties();
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.kick();
  }

  private leaderDuties(): void {
    const now = this.clock.now();
    const last = Math.max(this.pipeline.lastProposalAt, this.idleSince);
    // Only when something waits on time: an idle cluster writes nothing.
    if (now - last >= this.config.idleTickMs && this.pipeline.pending === 0 && now >= this.state.broker.nextDeadline()) {
      this.idleSince = now;
      this.pipeline.submit([{ tick: {} }], null);
    }
    this.promoteLearners();
  }

  private promoteLearners(): void {
    const id = learnerToPromote(this.raft.status(), this.config.learnerPromoteLag);
    if (id === 0) return;
    this.changeMembership(ConfChangeType.CONF_CHANGE_TYPE_ADD_VOTER, id, this.state.address(id) ?? null).then(
      () => undefined,
      (err: unknown) => {
        if (!(err instanceof ProposalDroppedError) && !(err instanceof NodeStoppingError)) this.log.warn({ err, member: id }, "learner promotion failed");
      },
    );
  }

  private onSoftState(role: Role, leaderId: number): void {
    const wasLeader = this.role === "leader";
    const leaderChanged = leaderId !== this.leaderId;
    this.role = role;
    this.leaderId = leaderId;
    if (wasLeader && role !== "leader") {
      const error = new NodeUnavailableError("this node lost leadership", this.leaderClientAddress());
      this.pipeline.failAll(error, new OutcomeUnknownError("leadership changed before the command was applied"));
      this.membershipWaiters.failAll(new OutcomeUnknownError("leadership changed before the membership change was applied"));
    }
    if (role === "leader" && !wasLeader) {
      this.idleSince = this.clock.now();
      this.pipeline.tookOffice((outcome) => {
        if (outcome.ok && outcome.result.ok && outcome.result.kind === "leaderTookOffice" && outcome.result.sessionsDown > 0) {
          this.log.info({ event: "sessions-down", sessions: outcome.result.sessionsDown }, "downed the consume sessions of earlier leaders");
        }
      });
    }
    if (leaderChanged || wasLeader !== (role === "leader")) {
      this.log.info({ event: "leader", leader: leaderId, role, term: this.raft.status().term }, leaderId === 0 ? "no leader" : `leader is ${leaderId}`);
      this.hooks.leaderChanged(leaderId, role === "leader", this.raft.status().term);
    }
    this.leadership.changed(leaderId);
  }

  private onRaftEvent(event: RaftEvent): void {
    switch (event.kind) {
      case "election-started":
        this.log.info({ event: "election", term: event.term, preVote: event.preVote, transfer: event.transfer }, "election started");
        return;
      case "became-leader":
        this.log.info({ event: "became-leader", term: event.term }, "became leader");
        return;
      case "stepped-down":
        this.log.info({ event: "stepped-down", term: event.term, reason: event.reason }, "stepped down");
        return;
      case "snapshot-sent":
        this.log.info({ event: "snapshot-sent", to: event.to, index: event.index, bytes: event.bytes }, "sending snapshot");
        return;
      case "snapshot-installed":
        this.log.info({ event: "snapshot-installed", index: event.index, term: event.term }, "snapshot installed");
        return;
      case "leadership-transfer-started":
      case "leadership-transfer-aborted":
        this.log.info({ event: event.kind, to: event.to, term: event.term }, event.kind);
        return;
      default:
        this.log.debug({ raft: event }, event.kind);
    }
  }

  /** Stops the node after a failure outside the loop (the body store could not write). */
  fail(error: Error): void {
    if (this.failed !== null) return;
    this.failed = error;
    this.log.fatal({ err: error }, "node failed; stopping");
    void this.stop();
    this.hooks.fatal(error);
  }
}

