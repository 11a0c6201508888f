// The deterministic simulator: real RaftNodes on a seeded network with crashes, partitions,
// membership changes and snapshots, checked for the Raft safety properties after every step
// and for liveness once the faults stop. One seed reproduces one run exactly.
import {
  ConfChangeType,
  createPrng,
  type Entry,
  type LoopWrite,
  type Message,
  NotLeaderError,
  ProposalDroppedError,
  RaftNode,
  type RaftEvent,
  randomInt,
  ReadyLoop,
  type Snapshot,
} from "../src/index.ts";
import { type FaultProfile, profileForSeed } from "./fault-profiles.ts";
import { SafetyChecker, SafetyViolation } from "./safety-checker.ts";
import { type AppState, applyEntry, decodeAppState, encodeAppState, initialAppState } from "./sim-app.ts";
import { SimNetwork } from "./sim-network.ts";
import { type SimStorage, type StorageFactory, memoryStorageFactory } from "./sim-storage.ts";

export interface SimOptions {
  seed: number;
  nodes: 3 | 5;
  profile?: FaultProfile;
  /** Ticks with faults before the network heals. */
  faultTicks?: number;
  /** Ticks the healed cluster gets to elect a leader and apply everything everywhere. */
  livenessTicks?: number;
  electionTick?: number;
  storage?: StorageFactory;
  /** Called with one line per notable happening (faults, elections, commits). */
  trace?: (line: string) => void;
}

export interface SimResult {
  seed: number;
  nodes: number;
  profile: string;
  ticks: number;
  leadersElected: number;
  proposalsAcknowledged: number;
  lastApplied: number;
  messagesSent: number;
  messagesDropped: number;
  crashes: number;
  partitions: number;
  confChanges: number;
  snapshotsInstalled: number;
  readsAnswered: number;
  ticksToRecover: number;
  /** Campaigns started because a follower heard its leader's connections close. */
  leaderLossCampaigns: number;
}

export class SimulationFailure extends Error {
  constructor(
    readonly seed: number,
    readonly nodes: number,
    readonly profile: string,
    readonly tick: number,
    override readonly cause: unknown,
  ) {
    super(
      `seed ${seed} (${nodes} nodes, profile ${profile}) failed at tick ${tick}: ${cause instanceof Error ? cause.message : String(cause)}\n` +
        `  replay: ${replayCommand(seed, nodes, profile)}`,
    );
    this.name = "SimulationFailure";
  }
}

export function replayCommand(seed: number, nodes: number, profile: string): string {
  return `pnpm sim --seed ${seed} --nodes ${nodes} --profile ${profile}`;
}

class LivenessFailure extends Error {
  constructor(detail: string) {
    super(`liveness: ${detail}`);
    this.name = "LivenessFailure";
  }
}

interface SimNode {
  id: number;
  raft: RaftNode | null;
  /** The node loop production runs, on this simulator's storage, network and clock. */
  loop: ReadyLoop | null;
  /** Work the loop deferred, run before the simulator moves on. */
  deferred: (() => void)[];
  /** Writes in flight on an asynchronous storage. */
  pendingWrites: Promise<void>[];
  storage: SimStorage;
  app: AppState;
  /** The most this node ever applied, to check a restart never loses it. */
  maxApplied: number;
  downUntil: number;
}

const MAX_ROUNDS_PER_TICK = 50;
/** Per tick, the chance of a ReadIndex request on a random live node. */
const READ_RATE = 0.2;
/** Reads not yet answered (lost with a crash or a dropped message) are forgotten beyond this. */
const MAX_PENDING_READS = 1000;

function maybeAwait(value: unknown): Promise<unknown> | undefined {
  return value instanceof Promise ? value : undefined;
}

/** A write's parts in the order the node's storage takes them; asynchronous when the storage is. */
function writeAll(storage: SimStorage, w: LoopWrite): Promise<void> | undefined {
  const steps: (() => unknown)[] = [];
  const { snapshot, hardState } = w;
  if (snapshot !== null) steps.push(() => storage.applySnapshot(snapshot));
  if (w.entries.length > 0) steps.push(() => storage.append(w.entries));
  if (hardState !== null) steps.push(() => storage.setHardState(hardState));
  for (let i = 0; i < steps.length; i++) {
    const pending = maybeAwait(steps[i]?.());
    if (pending !== undefined) {
      const rest = steps.slice(i + 1);
      return pending.then(async () => {
        for (const step of rest) await step();
      });
    }
  }
  return undefined;
}

export class Simulation {
  private readonly random: () => number;
  private readonly network: SimNetwork;
  private readonly checker = new SafetyChecker();
  private readonly nodes = new Map<number, SimNode>();
  private readonly ids: number[];
  private readonly profile: FaultProfile;
  private readonly storageFactory: StorageFactory;
  private readonly electionTick: number;
  private readonly trace: ((line: string) => void) | undefined;
  private now = 0;
  private proposalSeq = 0;
  private readSeq = 0;
  /** Read id -> the highest index applied anywhere when the read was issued. */
  private readonly pendingReads = new Map<number, number>();
  private partitionUntil = 0;
  private readonly stats = { crashes: 0, partitions: 0, confChanges: 0, snapshotsInstalled: 0, acknowledged: 0, reads: 0, leaderLossCampaigns: 0 };
  /** Followers that heard their leader's connections close: they campaign at `at` unless they heard from it since. */
  private leaderLoss: { node: SimNode; raft: RaftNode; leader: number; at: number }[] = [];
  private healed = false;

  constructor(private readonly options: SimOptions) {
    this.random = createPrng(options.seed * 2654435761 + 17);
    this.profile = options.profile ?? profileForSeed(options.seed);
    this.network = new SimNetwork(this.random, this.profile);
    this.ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
    this.storageFactory = options.storage ?? memoryStorageFactory();
    this.electionTick = options.electionTick ?? 10;
    this.trace = options.trace;
  }

  async run(): Promise<SimResult> {
    try {
      for (const id of this.ids) await this.start(id, true);
      const faultTicks = this.options.faultTicks ?? 300;
      while (this.now < faultTicks) {
        this.injectFaults();
        this.clientActivity();
        await this.tick();
      }
      const recovered = await this.heal();
      return {
        seed: this.options.seed,
        nodes: this.options.nodes,
        profile: this.profile.name,
        ticks: this.now,
        leadersElected: this.checker.leadersSeen(),
        proposalsAcknowledged: this.stats.acknowledged,
        lastApplied: this.checker.maxApplied,
        messagesSent: this.network.sent,
        messagesDropped: this.network.dropped,
        crashes: this.stats.crashes,
        partitions: this.stats.partitions,
        confChanges: this.stats.confChanges,
        snapshotsInstalled: this.stats.snapshotsInstalled,
        readsAnswered: this.stats.reads,
        ticksToRecover: recovered,
        leaderLossCampaigns: this.stats.leaderLossCampaigns,
      };
    } catch (error) {
      if (error instanceof SimulationFailure) throw error;
      throw new SimulationFailure(this.options.seed, this.options.nodes, this.profile.name, this.now, error);
    }
  }

  // ---- nodes ----

  private async start(id: number, first: boolean): Promise<void> {
    const storage = await this.storageFactory(id);
    const snapshot = storage.snapshot();
    const app = snapshot.meta.index > 0 ? decodeAppState(snapshot.data) : initialAppState();
    const old = this.nodes.get(id);
    if (old !== undefined) {
      // A commit index alone is not written at once (the leader teaches it again), so a node may
      // restart with a lower one; what it applied must still be in its log or its snapshot.
      const stored = Math.max(storage.lastIndex(), storage.snapshot().meta.index);
      if (stored < old.maxApplied) {
        throw new SafetyViolation("durability", `node ${id} applied ${old.maxApplied} before its crash but restarts holding only ${stored}`);
      }
    }
    const raft = new RaftNode(
      {
        id,
        peers: first ? this.ids : [],
        electionTick: this.electionTick,
        heartbeatTick: 1,
        maxSizePerMsg: this.profile.maxSizePerMsg,
        maxInflightMsgs: 8,
        maxInflightBytes: 4096,
        maxSnapshotChunkBytes: 64,
        unsafeCommitPreviousTerm: this.profile.unsafeCommitPreviousTerm === true,
        random: createPrng(Math.floor(this.random() * 2 ** 32)),
        logger: (event) => this.onEvent(event),
      },
      storage,
    );
    const node: SimNode = { id, raft, loop: null, deferred: [], pendingWrites: [], storage, app, maxApplied: old?.maxApplied ?? 0, downUntil: 0 };
    node.loop = this.createLoop(node, raft);
    this.nodes.set(id, node);
  }

  private createLoop(node: SimNode, raft: RaftNode): ReadyLoop {
    return new ReadyLoop({
      raft,
      storage: {
        lastIndex: () => node.storage.lastIndex(),
        write: (w, done) => {
          const persisted = () => {
            if (w.entries.length > 0) this.checker.observePersisted(node.id, w.entries, node.storage);
            done(null);
          };
          const pending = writeAll(node.storage, w);
          if (pending === undefined) return persisted();
          node.pendingWrites.push(pending.then(persisted, (error: unknown) => done(error instanceof Error ? error : new Error(String(error)))));
        },
      },
      transport: { send: (messages) => this.sendAll(messages) },
      // Simulated time stands still while a node works, so an apply never needs to yield.
      clock: { now: () => this.now, defer: (fn) => node.deferred.push(fn) },
      applySliceMs: Number.POSITIVE_INFINITY,
      host: {
        beforeReady: () => undefined,
        proposeWhileWriting: () => undefined,
        softState: (soft) => {
          if (soft.role === "leader") this.checker.checkLeaderCompleteness(node.id, raft.status().term, node.storage);
        },
        beforeSend: () => undefined,
        apply: (entry) => this.apply(node, entry),
        restore: (snapshot, done) => {
          this.restore(node, snapshot);
          done();
        },
        readStates: (states) => {
          for (const read of states) this.checkRead(node, read.index, read.context);
        },
        afterCycle: () => undefined,
        fail: (error) => {
          throw error;
        },
      },
    });
  }

  private crash(node: SimNode): void {
    node.loop?.stop();
    node.raft = null;
    node.loop = null;
    node.downUntil = this.now + randomInt(this.random, this.profile.restartTicks[0], this.profile.restartTicks[1] + 1);
    this.stats.crashes++;
    this.log(`crash     node ${node.id} (down until tick ${node.downUntil})`);
    this.connectionsClosed(node.id, this.live());
  }

  /** `observers` saw their connections to `peer` close (leaderLossDetection profiles only). */
  private connectionsClosed(peer: number, observers: readonly SimNode[]): void {
    if (this.profile.leaderLossDetection !== true) return;
    for (const node of observers) {
      const raft = node.raft;
      if (raft === null || node.id === peer || !raft.leaderUnreachable(peer)) continue;
      // The node waits by its campaign rank (two ticks a place here, where time moves in ticks),
      // plus a random part of a tick: this tick's end or the next one's.
      this.leaderLoss.push({ node, raft, leader: peer, at: this.now + 2 * raft.campaignRank(peer) + randomInt(this.random, 0, 2) });
    }
  }

  private campaignOnLeaderLoss(): void {
    if (this.leaderLoss.length === 0) return;
    const due = this.leaderLoss.filter((l) => l.at <= this.now);
    this.leaderLoss = this.leaderLoss.filter((l) => l.at > this.now);
    for (const { node, raft, leader } of due) {
      // A node that crashed meanwhile has another RaftNode, or none.
      if (node.raft !== raft || !raft.campaignIfLeaderSilent(leader)) continue;
      this.stats.leaderLossCampaigns++;
      this.log(`campaign  node ${node.id}: the connections to leader ${leader} closed`);
    }
  }

  private live(): SimNode[] {
    const out: SimNode[] = [];
    for (const id of this.ids) {
      const node = this.nodes.get(id);
      if (node?.raft) out.push(node);
    }
    return out;
  }

  /** The live leader with the highest term, if any. */
  private leader(): SimNode | null {
    let best: SimNode | null = null;
    let bestTerm = -1;
    for (const node of this.live()) {
      const st = node.raft?.status();
      if (st?.role === "leader" && st.term > bestTerm) {
        best = node;
        bestTerm = st.term;
      }
    }
    return best;
  }

  // ---- the loop ----

  private async tick(): Promise<void> {
    this.now++;
    for (const node of this.nodes.values()) {
      if (node.raft === null && node.downUntil <= this.now && !this.healed) {
        await this.start(node.id, false);
        this.log(`restart   node ${node.id}`);
      }
    }
    for (const node of this.live()) node.raft?.tick();
    this.campaignOnLeaderLoss();
    if (this.trace !== undefined && this.now % 25 === 0) {
      const leader = this.leader();
      const st = leader?.raft?.status();
      this.log(
        st === undefined
          ? `commits   no leader; ${this.stats.acknowledged} proposals applied so far`
          : `commits   leader ${st.id} (term ${st.term}) has committed ${st.commit}; ${this.stats.acknowledged} proposals applied so far`,
      );
    }
    for (let round = 0; round < MAX_ROUNDS_PER_TICK; round++) {
      let worked = false;
      for (const node of this.live()) {
        if (await this.handleReady(node)) worked = true;
      }
      const due = this.network.takeDue(this.now);
      for (const m of due) this.deliver(m);
      this.checkLeaders();
      if (!worked && due.length === 0) return;
    }
    this.network.carryOver(this.now, this.network.takeDue(this.now));
  }

  private deliver(m: Message): void {
    const node = this.nodes.get(m.to);
    node?.raft?.step(m);
  }

  /** Runs the node's loop until it is idle: every Ready it had is persisted, sent, applied and advanced. */
  private async handleReady(node: SimNode): Promise<boolean> {
    const raft = node.raft;
    const loop = node.loop;
    if (raft === null || loop === null || !raft.hasReady()) return false;
    loop.kick();
    while (node.deferred.length > 0 || node.pendingWrites.length > 0) {
      const work = node.deferred;
      node.deferred = [];
      for (const fn of work) fn();
      const writes = node.pendingWrites;
      node.pendingWrites = [];
      await Promise.all(writes);
    }
    if (loop.busy) throw new Error(`node ${node.id}'s loop is still busy with nothing left to wait for`);
    await this.maybeSnapshot(node);
    return true;
  }

  private sendAll(messages: readonly Message[]): void {
    for (const m of messages) this.network.send(m, this.now);
  }

  private apply(node: SimNode, entry: Entry): void {
    if (entry.index <= node.app.index) return;
    node.app = applyEntry(node.app, entry);
    const firstTime = this.checker.observeApplied(node.id, entry.index, entry.term, node.app.hash);
    if (firstTime && entry.data.length > 0 && entry.type === 0) this.stats.acknowledged++;
    node.maxApplied = Math.max(node.maxApplied, entry.index);
  }

  private restore(node: SimNode, snapshot: Snapshot): void {
    const restored = decodeAppState(snapshot.data);
    this.checker.observeSnapshotRestored(node.id, snapshot.meta.index, restored.hash);
    node.app = { ...restored, index: snapshot.meta.index };
    this.stats.snapshotsInstalled++;
  }

  private async maybeSnapshot(node: SimNode): Promise<void> {
    const every = this.profile.snapshotEvery;
    const raft = node.raft;
    if (every === 0 || raft === null) return;
    const snapIndex = node.storage.snapshot().meta.index;
    if (node.app.index - snapIndex < every) return;
    // The stored commit index must not be below the snapshot: the hard state the loop has not
    // written yet (a commit index alone) is written first, as the node does.
    const hardState = node.loop?.takeUnsavedHardState() ?? null;
    if (hardState !== null) await maybeAwait(node.storage.setHardState(hardState));
    await maybeAwait(node.storage.createSnapshot(node.app.index, raft.confState(), encodeAppState(node.app)));
    // Keep a few entries behind the snapshot so slightly lagging followers still get appends.
    const keep = randomInt(this.random, 0, 6);
    const compactTo = node.app.index - keep;
    if (compactTo > node.storage.firstIndex()) await maybeAwait(node.storage.compact(compactTo));
  }

  private checkLeaders(): void {
    for (const node of this.live()) {
      const st = node.raft?.status();
      if (st?.role === "leader") this.checker.observeLeader(node.id, st.term);
    }
  }

  // ---- faults and clients ----

  private injectFaults(): void {
    const p = this.profile;
    if (this.network.isPartitioned() && this.now >= this.partitionUntil) {
      this.network.heal();
      this.log("heal      network whole again");
    } else if (!this.network.isPartitioned() && this.random() < p.partitionRate) {
      this.startPartition();
    }
    const down = this.ids.length - this.live().length;
    if (this.random() < p.crashRate && down < p.maxDown) {
      const live = this.live();
      const leader = this.leader();
      const victim = leader !== null && this.random() < p.crashLeaderBias ? leader : live[randomInt(this.random, 0, live.length)];
      if (victim !== undefined) this.crash(victim);
    }
    if (this.random() < p.confChangeRate) this.changeMembership();
    if (this.random() < p.transferRate) {
      const leader = this.leader();
      const voters = leader?.raft?.confState().voters.filter((v) => v !== leader.id) ?? [];
      const to = voters[randomInt(this.random, 0, voters.length)];
      if (leader?.raft && to !== undefined) {
        this.log(`transfer  leadership ${leader.id} -> ${to}`);
        leader.raft.transferLeadership(to);
      }
    }
  }

  private startPartition(): void {
    const p = this.profile;
    this.partitionUntil = this.now + randomInt(this.random, p.partitionTicks[0], p.partitionTicks[1] + 1);
    this.stats.partitions++;
    const kind = randomInt(this.random, 0, 3);
    const shuffled = [...this.ids];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = randomInt(this.random, 0, i + 1);
      const a = shuffled[i];
      const b = shuffled[j];
      if (a !== undefined && b !== undefined) {
        shuffled[i] = b;
        shuffled[j] = a;
      }
    }
    const leader = this.leader();
    if (kind === 0 && leader !== null) {
      this.network.partition([[leader.id], this.ids.filter((id) => id !== leader.id)]);
      this.log(`partition leader ${leader.id} isolated until tick ${this.partitionUntil}`);
      this.connectionsClosed(leader.id, this.live());
    } else if (kind === 1) {
      const bridge = shuffled[0] ?? 0;
      const rest = shuffled.slice(1);
      const half = Math.floor(rest.length / 2);
      this.network.partition([rest.slice(0, half), rest.slice(half)], bridge);
      this.log(`partition bridge ${bridge} between [${rest.slice(0, half)}] and [${rest.slice(half)}] until tick ${this.partitionUntil}`);
    } else {
      const cut = randomInt(this.random, 1, shuffled.length);
      const a = shuffled.slice(0, cut);
      const b = shuffled.slice(cut);
      this.network.partition([a, b]);
      this.log(`partition [${a}] | [${b}] until tick ${this.partitionUntil}`);
      // The side without the leader sees its connections to it close, the leader alive or not.
      if (leader !== null) this.connectionsClosed(leader.id, this.live().filter((n) => a.includes(leader.id) !== a.includes(n.id)));
    }
  }

  private clientActivity(): void {
    this.issueRead();
    if (this.random() >= this.profile.proposeRate) return;
    const leader = this.leader();
    if (leader?.raft === null || leader === null) return;
    const count = randomInt(this.random, 1, 4);
    for (let i = 0; i < count; i++) {
      const data = new TextEncoder().encode(`s${this.options.seed}-p${++this.proposalSeq}`);
      try {
        leader.raft.propose(data);
      } catch (error) {
        if (!(error instanceof NotLeaderError || error instanceof ProposalDroppedError)) throw error;
      }
    }
  }

  /**
   * A linearizable read on a random live node. Whatever was committed (applied anywhere) when the
   * read was issued must be at or below the index the read is answered at.
   */
  private issueRead(): void {
    if (this.random() >= READ_RATE) return;
    const live = this.live();
    const node = live[randomInt(this.random, 0, live.length)];
    if (node?.raft === null || node === undefined) return;
    const id = ++this.readSeq;
    if (this.pendingReads.size >= MAX_PENDING_READS) return;
    this.pendingReads.set(id, this.checker.maxApplied);
    node.raft.readIndex(new TextEncoder().encode(`read-${id}`));
  }

  private checkRead(node: SimNode, index: number, context: Uint8Array): void {
    const id = Number(new TextDecoder().decode(context).slice("read-".length));
    const floor = this.pendingReads.get(id);
    if (floor === undefined) return;
    this.pendingReads.delete(id);
    this.stats.reads++;
    if (index < floor) {
      throw new SafetyViolation("linearizable reads", `node ${node.id} answered read ${id} at index ${index}, but ${floor} was committed before it was issued`);
    }
  }

  private changeMembership(): void {
    const leader = this.leader();
    if (leader?.raft === null || leader === null) return;
    const conf = leader.raft.confState();
    const outside = this.ids.filter((id) => !conf.voters.includes(id) && !conf.learners.includes(id));
    const minVoters = this.ids.length === 3 ? 2 : 3;
    const choice = this.random();
    let change: { type: ConfChangeType; nodeId: number } | null = null;
    const learner = conf.learners[0];
    if (learner !== undefined) {
      change = { type: ConfChangeType.CONF_CHANGE_TYPE_ADD_VOTER, nodeId: learner };
    } else if (outside.length > 0 && choice < 0.7) {
      const nodeId = outside[randomInt(this.random, 0, outside.length)] ?? 0;
      change = { type: ConfChangeType.CONF_CHANGE_TYPE_ADD_LEARNER, nodeId };
    } else if (conf.voters.length > minVoters) {
      const nodeId = conf.voters[randomInt(this.random, 0, conf.voters.length)] ?? 0;
      change = { type: ConfChangeType.CONF_CHANGE_TYPE_REMOVE_NODE, nodeId };
    }
    if (change === null) return;
    try {
      leader.raft.proposeConfChange({ ...change, context: new Uint8Array(0) });
      this.stats.confChanges++;
      this.log(`conf      leader ${leader.id} proposes ${ConfChangeType[change.type]} ${change.nodeId}`);
    } catch (error) {
      if (!(error instanceof NotLeaderError || error instanceof ProposalDroppedError)) throw error;
    }
  }

  // ---- liveness ----

  /** Stops every fault, restarts crashed nodes, and waits for a leader and full application. */
  private async heal(): Promise<number> {
    this.network.heal();
    this.network.faults = { dropRate: 0, duplicateRate: 0, maxDelayTicks: 0 };
    for (const node of this.nodes.values()) {
      if (node.raft === null) await this.start(node.id, false);
    }
    this.healed = true;
    this.log("heal      all faults stopped; waiting for the cluster to converge");
    const start = this.now;
    const limit = this.options.livenessTicks ?? 30 * this.electionTick;
    const target = this.checker.maxApplied;
    while (this.now - start < limit) {
      await this.tick();
      const leader = this.leader();
      if (leader?.raft === null || leader === null) continue;
      const conf = leader.raft.confState();
      const members = [...conf.voters, ...conf.learners];
      const done = members.every((id) => {
        const node = this.nodes.get(id);
        return node?.raft !== null && node !== undefined && node.app.index >= target && node.app.index >= leader.app.index;
      });
      if (done && leader.raft.status().commit === leader.app.index) {
        this.log(`converged after ${this.now - start} ticks: leader ${leader.id}, applied ${leader.app.index} everywhere`);
        return this.now - start;
      }
    }
    const states = this.ids.map((id) => {
      const node = this.nodes.get(id);
      const st = node?.raft?.status();
      return `${id}:${st?.role}/t${st?.term}/c${st?.commit}/a${node?.app.index}`;
    });
    throw new LivenessFailure(`no convergence within ${limit} ticks after healing (target applied ${target}; ${states.join(" ")})`);
  }

  // ---- tracing ----

  private onEvent(event: RaftEvent): void {
    if (this.trace === undefined) return;
    switch (event.kind) {
      case "became-leader":
        this.log(`leader    node ${event.id} leads term ${event.term}`);
        return;
      case "election-started":
        this.log(`election  node ${event.id} ${event.preVote ? "pre-votes for" : "campaigns in"} term ${event.term}${event.transfer ? " (transfer)" : ""}`);
        return;
      case "stepped-down":
        this.log(`step-down node ${event.id} in term ${event.term}: ${event.reason}`);
        return;
      case "conf-change-applied":
        this.log(`applied   node ${event.id} conf change ${ConfChangeType[event.change.type]} ${event.change.nodeId} at ${event.index}`);
        return;
      case "snapshot-sent":
        this.log(`snapshot  node ${event.id} sends snapshot ${event.index} (${event.bytes} bytes) to ${event.to}`);
        return;
      case "snapshot-installed":
        this.log(`snapshot  node ${event.id} installed snapshot ${event.index}`);
        return;
      default:
        return;
    }
  }

  private log(line: string): void {
    this.trace?.(`[t${String(this.now).padStart(4, "0")}] ${line}`);
  }
}

export async function runSimulation(options: SimOptions): Promise<SimResult> {
  return new Simulation(options).run();
}
