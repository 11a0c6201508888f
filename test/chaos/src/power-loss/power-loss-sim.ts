// The power-loss simulation: whole raftmq nodes (Raft core, a disk that loses unsynced writes,
// the broker state machine) on a seeded network, under the chaos workload and a nemesis that cuts
// the power of one node, the leader, a majority or every node at once. It records the chaos
// history in simulated time and checks it with the chaos checker. No clock, no randomness but the
// seed's, no disk, no network: one seed is one run, exactly.
import { type Message, RaftInvariantError } from "@raftmq/raft";
import { SimNetwork } from "@raftmq/raft/sim";
import { CommandBuilder } from "@raftmq/server/replicated-core";
import { type CheckResult, check } from "../checker.ts";
import type { Op } from "../history.ts";
import { SeededRandom } from "../seeded-random.ts";
import { type FaultKind, type NemesisOptions, type NemesisStats, PowerLossNemesis } from "./power-loss-nemesis.ts";
import { SimConsumer } from "./sim-consumer.ts";
import { SimHistory } from "./sim-history.ts";
import { type NodeConfig, type SimBug, SimNode } from "./sim-node.ts";
import { type ClientView, SimProducer } from "./sim-producer.ts";

export interface PowerLossOptions {
  readonly seed: number;
  readonly nodes: 3 | 5;
  /** Simulated milliseconds of workload under faults; the heal, the flush and the drain follow. */
  readonly steps?: number;
  readonly bug?: SimBug;
  /** Overrides of the fault mix drawn from the seed. */
  readonly weights?: Partial<Record<FaultKind, number>>;
  readonly tornRate?: number;
}

export interface PowerLossResult {
  readonly seed: number;
  readonly nodes: number;
  readonly steps: number;
  readonly bug: SimBug;
  readonly ops: readonly Op[];
  readonly check: CheckResult;
  readonly nemesis: NemesisStats;
  /** Power losses of every node at once. */
  readonly allNodePowerLosses: number;
  /** Simulated ms the whole run took, drain included. */
  readonly simulatedMs: number;
  /** Highest term any node reached. */
  readonly maxTerm: number;
  readonly lastApplied: number;
  readonly messagesSent: number;
  readonly messagesDropped: number;
  readonly publishRetries: number;
  readonly resubscribes: number;
  /** Nodes whose state machine differs from the leader's at the same applied index; empty when all agree. */
  readonly divergent: readonly number[];
  /** Why the run could not finish its heal or drain, if it could not. */
  readonly stalled: string | null;
  /** Nodes that stopped on a broken Raft invariant, with the error: a real node would have exited. */
  readonly nodeFailures: readonly string[];
  /** Terms in which two nodes led (Raft's election safety broken), one line each. */
  readonly electionSafety: readonly string[];
}

export class SimSetupError extends Error {
  override name = "SimSetupError";
}

/** Fixed shape of the workload and the cluster; the seed draws the rest. */
export const POWER_LOSS_DEFAULTS = {
  steps: 3000,
  queues: ["chaos-a", "chaos-b", "chaos-c"],
  producers: 3,
  consumersPerQueue: 2,
  tickMs: 10,
  setupTimeoutMs: 5000,
  healTimeoutMs: 5000,
  flushTimeoutMs: 3000,
  drainQuietMs: 100,
  drainTimeoutMs: 10_000,
  settleTimeoutMs: 2000,
  /** A node that stopped on a failure is started again after this long, as a supervisor would. */
  failedRestartMs: 100,
  maxOps: 200_000,
} as const;

const MAX_PUBLISHES_PER_RUN = 50_000;

export function runPowerLoss(options: PowerLossOptions): PowerLossResult {
  return new PowerLossSimulation(options).run();
}

class PowerLossSimulation {
  readonly #seed: number;
  readonly #steps: number;
  readonly #bug: SimBug;
  #now = 0;
  readonly #history: SimHistory;
  readonly #network: SimNetwork;
  readonly #nodes: SimNode[] = [];
  readonly #nemesis: PowerLossNemesis;
  readonly #producers: SimProducer[] = [];
  readonly #consumers: SimConsumer[] = [];
  readonly #clients: ClientView;
  readonly #workloadRng: SeededRandom;
  #nextValue = 0;
  #maxTerm = 0;
  readonly #nodeFailures: string[] = [];
  /** Who led each term, to catch two leaders in one. */
  readonly #leaderOfTerm = new Map<number, number>();
  readonly #electionSafety: string[] = [];
  /** Failed nodes and when they start again. */
  readonly #restarts = new Map<SimNode, number>();

  constructor(options: PowerLossOptions) {
    if (!Number.isSafeInteger(options.seed)) throw new RangeError(`seed must be an integer, got ${options.seed}`);
    this.#seed = options.seed;
    this.#steps = options.steps ?? POWER_LOSS_DEFAULTS.steps;
    if (!(Number.isInteger(this.#steps) && this.#steps >= 0 && this.#steps <= 600_000)) throw new RangeError(`steps must be 0..600000, got ${this.#steps}`);
    this.#bug = options.bug ?? "none";
    // Separate streams, so that a change in one part (the workload) does not reshuffle another (the faults).
    const root = new SeededRandom(options.seed);
    const streams = { network: root.int(0, 2 ** 31), nodes: root.int(0, 2 ** 31), nemesis: root.int(0, 2 ** 31), workload: root.int(0, 2 ** 31), shape: root.int(0, 2 ** 31) };
    const shape = new SeededRandom(streams.shape);
    const networkRng = new SeededRandom(streams.network);
    const nodeRng = new SeededRandom(streams.nodes);
    this.#workloadRng = new SeededRandom(streams.workload);
    this.#history = new SimHistory(() => this.#now, POWER_LOSS_DEFAULTS.maxOps);
    this.#network = new SimNetwork(() => networkRng.next(), {
      dropRate: shape.pick([0, 0, 0.01, 0.03]),
      duplicateRate: shape.pick([0, 0, 0.01]),
      maxDelayTicks: shape.int(0, 3),
    });
    const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
    const snapshotEntries = shape.pick([0, 0, 25, 60]);
    const config: NodeConfig = {
      peers: ids,
      electionTick: 10,
      heartbeatTick: 1,
      syncDelayMs: [1, shape.int(2, 8)],
      snapshotEntries,
      snapshotKeepEntries: shape.int(0, 5),
      idleTickMs: 500,
      maxBatchCommands: 64,
      maxPendingCommands: 10_000,
      maxSessions: 64,
      maxSizePerMsg: 16 * 1024,
      bug: this.#bug,
    };
    const env = (id: number) => ({
      now: () => this.#now,
      random: () => nodeRng.next(),
      send: (messages: readonly Message[]) => this.#send(id, messages),
      peerBodies: () => this.#nodes.filter((n) => n.id !== id && n.powered).map((n) => n.bodies),
    });
    for (const id of ids) this.#nodes.push(new SimNode(id, config, env(id)));
    const weights: Record<FaultKind, number> = { one: 3, leader: 3, majority: 2, all: 2, partition: shape.pick([0, 1, 2]), ...options.weights };
    const nemesisOptions: NemesisOptions = {
      weights,
      quietMs: [100, 400],
      holdMs: [20, 300],
      tornRate: options.tornRate ?? shape.pick([0, 0.5, 1]),
    };
    this.#nemesis = new PowerLossNemesis(this.#nodes, this.#network, new SeededRandom(streams.nemesis), this.#history, nemesisOptions, () => this.#now);
    this.#clients = { now: () => this.#now, leaders: () => this.#nodes.filter((n) => n.isLeader) };
  }

  run(): PowerLossResult {
    for (const node of this.#nodes) node.boot();
    this.#setup();
    this.#startWorkload();
    const faultsEnd = this.#now + this.#steps;
    while (this.#now < faultsEnd) this.#step(true, true);
    let stalled: string | null = null;
    this.#nemesis.heal();
    this.#network.heal();
    this.#network.faults = { dropRate: 0, duplicateRate: 0, maxDelayTicks: 0 };
    if (!this.#runUntil(POWER_LOSS_DEFAULTS.healTimeoutMs, () => this.#leader() !== null, false)) stalled = "no leader after the heal";
    // Producers stop and wait for their outstanding confirms, then give up what is left.
    this.#runUntil(POWER_LOSS_DEFAULTS.flushTimeoutMs, () => this.#producers.every((p) => p.outstanding === 0), false);
    for (const p of this.#producers) p.close();
    for (const c of this.#consumers) c.close();
    stalled ??= this.#drain();
    const divergent = this.#settle();
    if (divergent === null) stalled ??= "the nodes did not converge after the drain";
    const result = check(this.#history.ops, { orderScope: "consumer" });
    let lastApplied = 0;
    for (const n of this.#nodes) lastApplied = Math.max(lastApplied, n.appliedIndex);
    return {
      seed: this.#seed,
      nodes: this.#nodes.length,
      steps: this.#steps,
      bug: this.#bug,
      ops: this.#history.ops,
      check: result,
      nemesis: this.#nemesis.stats,
      allNodePowerLosses: this.#nemesis.stats.events.all,
      simulatedMs: this.#now,
      maxTerm: this.#maxTerm,
      lastApplied,
      messagesSent: this.#network.sent,
      messagesDropped: this.#network.dropped,
      publishRetries: this.#producers.reduce((sum, p) => sum + p.retries, 0),
      resubscribes: this.#consumers.reduce((sum, c) => sum + c.resubscribes, 0),
      divergent: divergent ?? [],
      stalled,
      nodeFailures: this.#nodeFailures,
      electionSafety: this.#electionSafety,
    };
  }

  // ---- phases ----

  /** Declares the queues once a leader is elected, before any fault. */
  #setup(): void {
    const builder = new CommandBuilder();
    let declared = 0;
    let inflight = false;
    const ok = this.#runUntil(
      POWER_LOSS_DEFAULTS.setupTimeoutMs,
      () => {
        const leader = this.#leader();
        if (declared === POWER_LOSS_DEFAULTS.queues.length) return true;
        if (leader === null || inflight) return false;
        const name = POWER_LOSS_DEFAULTS.queues[declared] ?? "";
        inflight = true;
        try {
          leader.submit([builder.declareQueue({ name, durable: true })], (_i, outcome) => {
            inflight = false;
            if (outcome.ok && outcome.result.ok) declared++;
          });
        } catch {
          inflight = false;
        }
        return false;
      },
      false,
    );
    if (!ok) throw new SimSetupError(`seed ${this.#seed}: the queues were not declared within ${POWER_LOSS_DEFAULTS.setupTimeoutMs} simulated ms`);
  }

  #startWorkload(): void {
    const rng = this.#workloadRng;
    const { queues, producers, consumersPerQueue } = POWER_LOSS_DEFAULTS;
    const nextValue = () => {
      if (this.#nextValue >= MAX_PUBLISHES_PER_RUN) throw new RangeError(`more than ${MAX_PUBLISHES_PER_RUN} publishes in one run`);
      return ++this.#nextValue;
    };
    for (let i = 1; i <= producers; i++) {
      const seed = rng.int(0, 2 ** 31 - 1);
      this.#producers.push(
        new SimProducer(
          `p${i}`,
          `chaos-p${i}-${seed}`,
          { queues, window: 8, intervalMs: [4, 16], callTimeoutMs: 400, backoffMs: 20, retryTimeoutMs: 4000 },
          new SeededRandom(seed),
          this.#history,
          this.#clients,
          nextValue,
        ),
      );
    }
    let n = 0;
    for (const queue of queues) {
      for (let i = 0; i < consumersPerQueue; i++) {
        this.#consumers.push(
          new SimConsumer(
            `c${++n}`,
            { queue, prefetch: 8, ackDelayMs: [0, 30], reconnectMs: 30, maxPendingAcks: 64 },
            new SeededRandom(rng.int(0, 2 ** 31 - 1)),
            this.#history,
            this.#clients,
          ),
        );
      }
    }
  }

  /** Reads every queue until the leader holds nothing ready or unacked; null when it finished. */
  #drain(): string | null {
    const drains = POWER_LOSS_DEFAULTS.queues.map((queue) => ({
      queue,
      op: this.#history.invoke({ f: "drain", process: "drain", queue }),
      consumer: new SimConsumer(
        "drain",
        { queue, prefetch: 256, ackDelayMs: [0, 0], reconnectMs: 20, maxPendingAcks: 256, phase: "drain" },
        new SeededRandom(this.#seed ^ queue.length),
        this.#history,
        this.#clients,
      ),
    }));
    const quiet = POWER_LOSS_DEFAULTS.drainQuietMs;
    const done = this.#runUntil(
      POWER_LOSS_DEFAULTS.drainTimeoutMs,
      () => {
        for (const d of drains) d.consumer.step();
        if (this.#now % quiet !== 0) return false;
        const leader = this.#leader();
        if (leader === null || leader.commit !== leader.appliedIndex) return false;
        let open = 0;
        for (const d of drains) {
          if (d.op.done) continue;
          const info = leader.state.broker.queueInfo(d.queue);
          const empty = info !== undefined && info.messagesReady === 0 && info.messagesUnacknowledged === 0;
          if (empty && this.#now - d.consumer.lastDeliveryAt >= quiet) {
            d.op.ok({ value: d.consumer.deliveries });
            d.consumer.close();
          } else {
            open++;
          }
        }
        return open === 0;
      },
      false,
    );
    if (done) return null;
    for (const d of drains) {
      if (d.op.done) continue;
      d.op.info({ error: "timeout", value: d.consumer.deliveries });
      d.consumer.close();
    }
    return "the drain timed out";
  }

  /**
   * Lets every node catch up, then compares their state machines at the same applied index.
   * Answers the nodes that differ from the leader's, or null when they never stood together.
   */
  #settle(): number[] | null {
    let divergent: number[] | null = null;
    this.#runUntil(
      POWER_LOSS_DEFAULTS.settleTimeoutMs,
      () => {
        const leader = this.#leader();
        if (leader === null) return false;
        const index = leader.appliedIndex;
        if (leader.commit !== index || !this.#nodes.every((n) => n.powered && n.appliedIndex === index)) return false;
        const reference = leader.state.snapshot();
        divergent = this.#nodes.filter((n) => !sameBytes(n.state.snapshot(), reference)).map((n) => n.id);
        return true;
      },
      false,
    );
    return divergent;
  }

  // ---- the loop ----

  /** Steps until `done` holds (checked after each step) or `limitMs` passes; true when done. */
  #runUntil(limitMs: number, done: () => boolean, workload: boolean): boolean {
    const end = this.#now + limitMs;
    while (this.#now < end) {
      this.#step(false, workload);
      if (done()) return true;
    }
    return false;
  }

  /** One simulated millisecond. */
  #step(faulting: boolean, publishing: boolean): void {
    this.#now++;
    const now = this.#now;
    this.#nemesis.step(faulting);
    for (const [node, at] of [...this.#restarts]) {
      if (at > now) continue;
      this.#restarts.delete(node);
      if (node.powered) continue;
      node.boot();
      this.#history.record({ f: "restart", process: "nemesis", type: "info", value: `n${node.id} started again after its failure`, nodes: [`n${node.id}`] });
    }
    if (now % POWER_LOSS_DEFAULTS.tickMs === 0) {
      for (const node of this.#nodes) if (node.powered) this.#guard(node, () => node.tick());
    }
    for (const m of this.#network.takeDue(now)) {
      const node = this.#nodes[m.to - 1];
      if (node?.powered === true) this.#guard(node, () => node.step(m));
    }
    for (const node of this.#nodes) this.#guard(node, () => node.syncIfDue());
    for (const p of this.#producers) p.step(publishing);
    for (const c of this.#consumers) c.step();
    for (const node of this.#nodes) {
      this.#guard(node, () => node.drive());
      if (node.term > this.#maxTerm) this.#maxTerm = node.term;
    }
    this.#checkLeaders();
  }

  /** Raft's election safety: at most one leader per term, across power cycles too. */
  #checkLeaders(): void {
    for (const node of this.#nodes) {
      if (!node.isLeader) continue;
      const leader = this.#leaderOfTerm.get(node.term);
      if (leader === undefined) this.#leaderOfTerm.set(node.term, node.id);
      else if (leader !== node.id && this.#electionSafety.length < 16) this.#electionSafety.push(`n${leader} and n${node.id} both led term ${node.term} (at ${this.#now} ms)`);
    }
  }

  /** A broken Raft invariant stops the node, as in a real process; anything else is a bug here. */
  #guard(node: SimNode, work: () => void): void {
    try {
      work();
    } catch (err) {
      if (!(err instanceof RaftInvariantError) || !node.powered) throw err;
      node.crash();
      const detail = `n${node.id} at ${this.#now} ms: ${err.message}`;
      this.#nodeFailures.push(detail);
      this.#history.record({ f: "kill", process: "nemesis", type: "info", value: `n${node.id} stopped: ${err.message}`, nodes: [`n${node.id}`] });
      this.#restarts.set(node, this.#now + POWER_LOSS_DEFAULTS.failedRestartMs);
    }
  }

  #send(from: number, messages: readonly Message[]): void {
    for (const m of messages) {
      if (m.from !== from) throw new Error(`node ${from} sends a message from ${m.from}`);
      // One millisecond at least on the wire: a message never lands in the step that sent it.
      this.#network.send(m, this.#now + 1);
    }
  }

  /** The leader with the highest term among powered nodes. */
  #leader(): SimNode | null {
    let best: SimNode | null = null;
    for (const n of this.#nodes) if (n.isLeader && (best === null || n.term > best.term)) best = n;
    return best;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
