// One raftmq node: storage, the Raft driver, the gRPC servers (client port: Broker, Cluster,
// health, reflection; peer port: Raft plus forwarded Broker and Cluster calls) and the HTTP port.
import { randomBytes } from "node:crypto";
import type { Server as HttpServer } from "node:http";
import * as grpc from "@grpc/grpc-js";
import { RaftStorage } from "@raftmq/storage";
import type { Logger } from "pino";
import { brokerHandlers } from "./broker-service.ts";
import { clusterHandlers, nodeReady } from "./cluster-service.ts";
import { CommandBuilder } from "./command-builder.ts";
import { ConsumerSessions } from "./consumer-sessions.ts";
import { GrpcIntrospection } from "./grpc-introspection.ts";
import { toGrpcFailure } from "./grpc-status.ts";
import { LeaderForwarder } from "./leader-forwarder.ts";
import { aliasAddress, type NodeConfig } from "./node-config.ts";
import { NodeUnavailableError } from "./node-errors.ts";
import { NodeMetrics } from "./node-metrics.ts";
import { startOpsHttp } from "./ops-http.ts";
import { RaftDriver } from "./raft-driver.ts";
import { RemovalProbe } from "./removal-probe.ts";
import { readIdentityRecord, writeIdentityRecord } from "./identity-record.ts";
import { StartupResponder } from "./startup-responder.ts";
import { type ClusterCalls, JoinLoop, planStatefulSetStart, type StatefulSetStartLimits } from "./statefulset-startup.ts";
import { brokerServiceDefinition, clusterServiceDefinition } from "@raftmq/proto/grpc";

export const RAFTMQ_VERSION = "0.1.0";

const MiB = 1024 * 1024;
/** Consume streams one node serves at once. */
const MAX_SESSIONS = 10_000;
/** PublishStream requests awaiting confirms on one stream. */
const MAX_STREAM_WINDOW = 4096;
/** Applied entries behind commit that still count as caught up for /readyz. */
const READY_LAG = 1000;
/** SessionDown commands proposed per step of a new leader's sweep. */
const SWEEP_CHUNK = 256;

export type NodeExit = { code: 0; reason: "removed" | "stopped" } | { code: 1; reason: "fatal"; error: Error };

/** Stand-ins for the StatefulSet startup's Cluster calls and limits, for tests. */
export interface NodeStartOptions {
  clusterCalls?: ClusterCalls;
  startLimits?: StatefulSetStartLimits;
}

export interface NodePorts {
  client: number;
  peer: number;
  http: number;
}

function bind(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}

export class RaftmqNode {
  readonly exited: Promise<NodeExit>;
  ports: NodePorts = { client: 0, peer: 0, http: 0 };
  private resolveExit!: (exit: NodeExit) => void;
  private readonly driver: RaftDriver;
  private readonly sessions: ConsumerSessions;
  private readonly forwarder: LeaderForwarder;
  private readonly introspection = new GrpcIntrospection();
  private readonly metrics: NodeMetrics;
  private readonly clientServer: grpc.Server;
  private readonly peerServer: grpc.Server;
  private http: HttpServer | null = null;
  private readinessTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private readonly removalProbe: RemovalProbe;
  private joinLoop: JoinLoop | null = null;

  private constructor(
    private readonly config: NodeConfig,
    private readonly storage: RaftStorage,
    private readonly log: Logger,
  ) {
    this.exited = new Promise((resolve) => {
      this.resolveExit = resolve;
    });
    this.sessions = new ConsumerSessions(`${config.nodeId}.${Date.now().toString(36)}${randomBytes(3).toString("hex")}`, MAX_SESSIONS);
    this.forwarder = new LeaderForwarder({ selfId: config.nodeId });
    this.metrics = new NodeMetrics({
      raft: () => {
        const s = this.driver.raft.status();
        return { term: s.term, role: s.role, commit: s.commit, applied: this.driver.appliedIndex, lastIndex: s.lastIndex, snapshotIndex: this.driver.snapshotIndex, leaderId: s.leaderId };
      },
      queues: () => this.driver.state.broker.listQueues().map((q) => ({ name: q.name, ready: q.messagesReady, unacked: q.messagesUnacknowledged, consumers: q.consumers })),
      consumerStreams: () => this.sessions.size,
    });
    this.driver = new RaftDriver({
      config,
      storage,
      logger: log,
      metrics: this.metrics,
      hooks: {
        leaderChanged: (leaderId, isLeader, term) => this.onLeaderChanged(leaderId, isLeader, term),
        effects: (effects) => {
          const before = this.sessions.delivered;
          this.sessions.route(effects);
          this.metrics.delivered.inc(this.sessions.delivered - before);
        },
        removed: () => this.onRemoved(),
        fatal: (error) => {
          this.introspection.setServing(false);
          this.resolveExit({ code: 1, reason: "fatal", error });
        },
      },
    });
    const options: grpc.ServerOptions = {
      "grpc.max_send_message_length": 64 * MiB,
      "grpc.max_receive_message_length": 64 * MiB,
    };
    this.clientServer = new grpc.Server(options);
    this.peerServer = new grpc.Server(this.driver.transport.serverOptions());
    const builder = new CommandBuilder();
    const leaderWaitMs = config.tickMs * config.electionTicks * 2;
    const broker = brokerHandlers({
      driver: this.driver,
      builder,
      sessions: this.sessions,
      forwarder: this.forwarder,
      leaderWaitMs,
      maxStreamWindow: MAX_STREAM_WINDOW,
      log,
      metrics: this.metrics,
    });
    const cluster = clusterHandlers({ driver: this.driver, forwarder: this.forwarder, leaderWaitMs, version: RAFTMQ_VERSION, readyLag: READY_LAG });
    for (const server of [this.clientServer, this.peerServer]) {
      server.addService(brokerServiceDefinition, broker);
      server.addService(clusterServiceDefinition, cluster);
    }
    this.driver.transport.addService(this.peerServer);
    this.introspection.addToServer(this.clientServer);
    const electionMs = config.tickMs * config.electionTicks;
    this.removalProbe = new RemovalProbe(
      {
        selfId: config.nodeId,
        isMember: () => {
          const conf = this.driver.raft.confState();
          return conf.voters.includes(config.nodeId) || conf.learners.includes(config.nodeId);
        },
        leaderId: () => this.driver.leaderId,
        peerAddresses: () => this.driver.state.members().filter((m) => m.id !== config.nodeId).map((m) => m.peerAddress),
        removed: () => this.onRemoved(),
      },
      3 * electionMs,
      Math.max(200, electionMs),
    );
  }

  private onRemoved(): void {
    this.log.warn({ event: "removed" }, "this node was removed from the cluster; stopping");
    void this.shutdown({ transfer: false }).then(() => this.resolveExit({ code: 0, reason: "removed" }));
  }

  static async start(config: NodeConfig, log: Logger, options: NodeStartOptions = {}): Promise<RaftmqNode> {
    let needsAdding = false;
    if (config.statefulSet !== null) {
      const deciding = readIdentityRecord(config.dataDir) === null ? await StartupResponder.listen(`${config.host}:${config.clientPort}`, RAFTMQ_VERSION) : null;
      let plan: Awaited<ReturnType<typeof planStatefulSetStart>>;
      try {
        plan = await planStatefulSetStart(config, { ...(options.clusterCalls && { calls: options.clusterCalls }), ...(options.startLimits && { limits: options.startLimits }) });
      } finally {
        await deciding?.close();
      }
      log = log.child({ node: plan.config.nodeId });
      log.info({ event: "statefulset-startup", pod: config.podName, decision: plan.decision, nodeId: plan.config.nodeId, join: plan.config.join }, "decided how to start");
      config = plan.config;
      needsAdding = plan.needsAdding;
    }
    const storage = await RaftStorage.open({ dir: config.dataDir });
    let node: RaftmqNode;
    try {
      node = new RaftmqNode(config, storage, log);
    } catch (err) {
      await storage.close();
      throw err;
    }
    try {
      await node.listen();
    } catch (err) {
      await node.shutdown({ transfer: false });
      throw err;
    }
    node.driver.start();
    node.removalProbe.start();
    if (needsAdding) node.startJoinLoop(options);
    node.readinessTimer = setInterval(() => node.introspection.setServing(nodeReady(node.driver, READY_LAG)), 200);
    return node;
  }

  private async listen(): Promise<void> {
    const { host } = this.config;
    const peer = await bind(this.peerServer, `${host}:${this.config.peerPort}`);
    const client = await bind(this.clientServer, `${host}:${this.config.clientPort}`);
    this.http = await startOpsHttp(host, this.config.httpPort, this.metrics, {
      healthy: () => {
        const h = this.storage.health();
        if (!h.ok) return { ok: false, detail: `storage failed: ${h.error.message}` };
        return this.driver.healthy ? { ok: true, detail: "alive" } : { ok: false, detail: "the node stopped after a failure" };
      },
      ready: () => {
        const s = this.driver.raft.status();
        if (nodeReady(this.driver, READY_LAG)) return { ok: true, detail: `leader ${s.leaderId}, applied ${this.driver.appliedIndex} of ${s.commit}` };
        return { ok: false, detail: s.leaderId === 0 ? "no leader known" : `catching up: applied ${this.driver.appliedIndex} of ${s.commit}` };
      },
    });
    const address = this.http.address();
    this.ports = { client, peer, http: typeof address === "object" && address !== null ? address.port : this.config.httpPort };
  }

  /** A StatefulSet pod that joins asks the cluster to add it, until the membership lists it. */
  private startJoinLoop(options: NodeStartOptions): void {
    const { config } = this;
    const identity = config.statefulSet;
    const founders = identity?.initialCluster.map((m) => m.clientAddress) ?? config.initialCluster.map((m) => m.clientAddress);
    const self = `${config.advertiseHost}:${this.ports.client}`;
    this.joinLoop = new JoinLoop(
      {
        selfId: config.nodeId,
        peerAddress: `${config.advertiseHost}:${this.ports.peer}`,
        clientAddress: self,
        knownClientAddresses: () => {
          const learned = this.driver.state.members().map((m) => aliasAddress(m.clientAddress, config.hostAlias));
          return [...new Set([...founders, ...learned])].filter((a) => a !== self && a !== "");
        },
        dialAddress: (address) => aliasAddress(address, config.hostAlias),
        joined: () => {
          writeIdentityRecord(config.dataDir, { nodeId: config.nodeId, joined: true });
          this.log.info({ event: "joined" }, "the cluster's membership lists this node");
        },
        giveUp: (reason) => this.resolveExit({ code: 1, reason: "fatal", error: new Error(reason) }),
        log: (event, detail) => this.log.info({ event, ...detail }, event),
      },
      { ...(options.clusterCalls && { calls: options.clusterCalls }), ...(options.startLimits && { limits: options.startLimits }) },
    );
  }

  /** The Raft driver, for in-process tests and tools. */
  get raftDriver(): RaftDriver {
    return this.driver;
  }

  private onLeaderChanged(leaderId: number, isLeader: boolean, term: number): void {
    if (this.graceTimer !== null) {
      clearTimeout(this.graceTimer);
      this.graceTimer = null;
    }
    if (!isLeader) {
      if (this.sessions.size > 0) {
        const failure = toGrpcFailure(new NodeUnavailableError("leadership moved; subscribe again", this.driver.leaderClientAddress()));
        const ended = this.sessions.endAll(failure);
        this.log.info({ event: "sessions-ended", sessions: ended.length, leader: leaderId }, "ended consume streams after losing leadership");
      }
      return;
    }
    this.graceTimer = setTimeout(() => this.sweepOrphanSessions(term), this.config.consumerGraceMs);
  }

  /** A new leader downs the sessions of the state machine that no stream reattached to. */
  private sweepOrphanSessions(term: number): void {
    this.graceTimer = null;
    if (!this.driver.isLeader || this.driver.raft.status().term !== term) return;
    const orphans = this.driver.state.knownSessions().filter((id) => !this.sessions.has(id));
    if (orphans.length === 0) return;
    this.log.info({ event: "session-sweep", sessions: orphans.length }, "downing sessions without a stream");
    for (let i = 0; i < orphans.length; i += SWEEP_CHUNK) {
      try {
        this.driver.submit(
          orphans.slice(i, i + SWEEP_CHUNK).map((sessionId) => ({ sessionDown: { sessionId } })),
          null,
        );
      } catch (err) {
        this.log.warn({ err }, "session sweep stopped");
        return;
      }
    }
  }

  /**
   * Stops the node: no new calls, leadership handed over when `transfer` and this node leads
   * (bounded wait), streams ended, the last write flushed, storage closed.
   */
  shutdown(options: { transfer: boolean }): Promise<void> {
    this.stopping ??= this.doShutdown(options.transfer);
    return this.stopping;
  }

  private async doShutdown(transfer: boolean): Promise<void> {
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    this.introspection.setServing(false);
    if (this.readinessTimer !== null) clearInterval(this.readinessTimer);
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.removalProbe.stop();
    this.joinLoop?.stop();
    if (transfer && this.driver.isLeader) await this.transferLeadership(deadline);
    this.sessions.endAll(toGrpcFailure(new NodeUnavailableError("the node is shutting down; subscribe again", this.driver.leaderClientAddress())));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.clientServer.forceShutdown();
        resolve();
      }, Math.max(0, Math.min(1000, deadline - Date.now())));
      this.clientServer.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await this.driver.stop();
    this.peerServer.forceShutdown();
    this.forwarder.close();
    if (this.http !== null) {
      const http = this.http;
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
    await this.storage.close();
    this.log.info({ event: "stopped" }, "node stopped");
    // A removal or a failure has settled the exit already; settling again changes nothing.
    this.resolveExit({ code: 0, reason: "stopped" });
  }

  private async transferLeadership(deadline: number): Promise<void> {
    const status = this.driver.raft.status();
    const target = status.progress.filter((p) => !p.isLearner && p.id !== status.id).sort((a, b) => b.match - a.match || a.id - b.id)[0];
    if (target === undefined) return;
    try {
      this.driver.raft.transferLeadership(target.id);
      this.driver.kick();
    } catch (err) {
      this.log.warn({ err }, "leadership transfer on shutdown failed");
      return;
    }
    this.log.info({ event: "leadership-transfer", to: target.id }, "handing leadership over before shutdown");
    const waitUntil = Math.min(deadline, Date.now() + this.config.tickMs * this.config.electionTicks * 2);
    while (Date.now() < waitUntil && this.driver.isLeader) await new Promise((r) => setTimeout(r, 10));
  }
}
