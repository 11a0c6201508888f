// One raftmq node: storage, the Raft driver, the gRPC servers (client port: Broker, Cluster,
// Access, health, reflection; peer port: Raft plus forwarded Broker, Cluster and Access calls)
// and the HTTP port. Every gRPC handler sits behind the access gate of its port; the peer port
// is mutual TLS with the cluster's CA unless the node runs --insecure.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Server as HttpServer } from "node:http";
import * as grpc from "@grpc/grpc-js";
import { BodyStore, RaftStorage } from "@raftmq/storage";
import { fetchBodies } from "./body-fetch.ts";
import { BODIES_DIR } from "./data-verification.ts";
import type { Logger } from "pino";
import { brokerHandlers } from "./broker-service.ts";
import { clusterHandlers, nodeReady } from "./cluster-service.ts";
import { CommandBuilder } from "./command-builder.ts";
import { ConsumerSessions } from "./consumer-sessions.ts";
import { GrpcIntrospection } from "./grpc-introspection.ts";
import { FORWARDED_METADATA_HEADROOM_BYTES, limitMetadataBytes } from "./http2-limits.ts";
import { toGrpcFailure } from "./grpc-status.ts";
import { LeaderForwarder } from "./leader-forwarder.ts";
import { aliasAddress, BOOTSTRAP_ADMIN_PASSWORD_ENV, ConfigError, type NodeConfig } from "./node-config.ts";
import { NodeUnavailableError } from "./node-errors.ts";
import { NodeMetrics } from "./node-metrics.ts";
import { startOpsHttp } from "./ops-http.ts";
import { PeerTransport } from "./peer-transport.ts";
import { RaftDriver } from "./raft-driver.ts";
import { RemovalProbe } from "./removal-probe.ts";
import { readIdentityRecord, writeIdentityRecord } from "./identity-record.ts";
import { StartupResponder } from "./startup-responder.ts";
import { type ClusterCalls, grpcClusterCallsWith, JoinLoop, planStatefulSetStart, type StatefulSetStartLimits } from "./statefulset-startup.ts";
import { accessServiceDefinition, brokerServiceDefinition, clusterServiceDefinition } from "@raftmq/proto/grpc";
import type { raftmq } from "@raftmq/proto";
import { Authenticator } from "./access/authenticator.ts";
import { AuditLog } from "./access/audit-log.ts";
import { accessHandlers } from "./access-service.ts";
import { AccessGate } from "./security/access-gate.ts";
import { AmqpServer } from "./amqp/amqp-server.ts";
import { memoryLimitBytes, processReadings, ResourceAlarms } from "./resource-alarms.ts";
import { ClusterAlarms } from "./cluster-alarms.ts";
import { isLoopbackAddress } from "./access/authenticator.ts";
import type { SecureContextOptions } from "node:tls";
import { commonNameOfCertificate, nodeIdOfCertificate } from "./tls/cert-identity.ts";
import { type BootstrapAdmin, ClusterBootstrap } from "./security/cluster-bootstrap.ts";
import { type CertificateCoverage, exactId, insecureSecurity, type NodeSecurity, tlsSecurity } from "./security/node-security.ts";
import { ordinalOfNodeId } from "./statefulset-identity.ts";
import { MemberLookup } from "./security/member-lookup.ts";

export const RAFTMQ_VERSION = "0.1.0";

const MiB = 1024 * 1024;
/** Largest gRPC message a node's servers receive or send. */
export const MAX_GRPC_MESSAGE_BYTES = 64 * MiB;
/** Consume streams one node serves at once. */
export const MAX_SESSIONS = 10_000;
/** Applied entries behind commit that still count as caught up for /readyz. */
const READY_LAG = 1000;

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
  /** The plaintext client port on 127.0.0.1, when there is one. */
  clientPlaintext?: number;
  /** AMQP 0-9-1, when served. */
  amqp?: number;
  /** AMQP 0-9-1 over TLS, when served. */
  amqps?: number;
}

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

/** What a node needs to run securely, resolved before it starts. */
export interface NodeSecuritySetup {
  security: NodeSecurity;
  admin: BootstrapAdmin | null;
}

/** The node's TLS and bootstrap administrator from its configuration; throws TlsSetupError on bad files. */
export function securitySetup(config: NodeConfig, env: Readonly<Record<string, string | undefined>> = process.env): NodeSecuritySetup {
  const security = config.insecure
    ? insecureSecurity
    : tlsSecurity(
        {
          caFile: config.tlsCaFile,
          certFile: config.tlsCertFile,
          keyFile: config.tlsKeyFile,
          clientCertFile: config.clientTlsCertFile,
          clientKeyFile: config.clientTlsKeyFile,
          clientCaFile: config.clientTlsCaFile,
          clientCertAuth: config.clientCertAuth,
          refreshMs: config.tlsRefreshMs,
        },
        config.nodeId,
        config.statefulSet === null ? exactId : sameStatefulSetSlot,
      );
  return { security, admin: bootstrapAdmin(config, env) };
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
  private stopping: Promise<void> | null = null;
  private readonly removalProbe: RemovalProbe;
  private joinLoop: JoinLoop | null = null;
  private readonly audit: AuditLog;
  private readonly bootstrap: ClusterBootstrap;
  private readonly memberLookup: MemberLookup;
  private plaintextServer: grpc.Server | null = null;
  private readonly gates: [AccessGate, AccessGate];
  private readonly amqp: AmqpServer | null;
  private readonly alarms: ResourceAlarms;
  private readonly clusterAlarms: ClusterAlarms;
  private clusterAlarmTimer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly config: NodeConfig,
    private readonly storage: RaftStorage,
    private readonly bodies: BodyStore,
    private readonly log: Logger,
    private readonly setup: NodeSecuritySetup,
  ) {
    const { security } = setup;
    this.exited = new Promise((resolve) => {
      this.resolveExit = resolve;
    });
    this.sessions = new ConsumerSessions(`${config.nodeId}.${Date.now().toString(36)}${randomBytes(3).toString("hex")}`, MAX_SESSIONS, (ref) => this.driver.readBody(ref), config.consumeMaxPendingBytes, (consumerId) => this.driver.readAheadFor(consumerId));
    this.forwarder = new LeaderForwarder({
      selfId: config.nodeId,
      credentials: security.nodeChannelCredentials(),
      channelOptions: security.channelOptions,
      leaderClientAddress: () => this.driver.leaderClientAddress(),
    });
    this.metrics = new NodeMetrics({
      raft: () => {
        const s = this.driver.status();
        return { term: s.term, role: s.role, commit: s.commit, applied: this.driver.appliedIndex, lastIndex: s.lastIndex, snapshotIndex: this.driver.snapshotIndex, leaderId: s.leaderId };
      },
      queues: () =>
        this.driver.broker.vhosts().flatMap((vhost) =>
          this.driver.broker.listQueues(vhost).map((q) => ({ vhost, name: q.name, ready: q.messagesReady, unacked: q.messagesUnacknowledged, consumers: q.consumers })),
        ),
      consumerStreams: () => this.sessions.size,
    });
    this.metrics.bodyStore = () => ({
      written: bodies.written,
      writtenBytes: bodies.writtenBytes,
      deleted: bodies.deleted,
      missing: this.driver.bodyKeeper.missing,
      compactions: bodies.compactions,
      segments: bodies.segmentCount,
      segmentsDropped: bodies.segmentsDropped,
      readAhead: this.driver.readAhead.read,
      readAheadHits: this.driver.readAhead.hits,
    });
    const transport = new PeerTransport({
      selfId: config.nodeId,
      onMessages: (messages) => this.driver.receive(messages),
      bodySource: (keys) => bodies.readMany(keys),
      credentials: (peerId) => security.peerChannelCredentials(peerId),
      channelOptions: security.channelOptions,
      serverCredentials: security.peerServerCredentials(),
      ...(security.insecure
        ? {}
        : {
            identify: (call: Pick<grpc.ServerUnaryCall<unknown, unknown>, "getAuthContext">, claimed: number) => {
              const cert = call.getAuthContext().sslPeerCertificate;
              if (cert === undefined) return { ok: false as const, reason: "no certificate signed by the cluster CA" };
              const id = nodeIdOfCertificate(cert);
              if (id === 0) return { ok: false as const, reason: `the certificate of "${commonNameOfCertificate(cert)}" names no node` };
              // The stream then speaks for the claimed id, which the certificate covers.
              return { ok: true as const, peerId: security.covers(id, claimed) ? claimed : id };
            },
          }),
      onRefused: (remote, peerId, reason) => {
        log.warn({ event: "peer-refused", remote, claimed: peerId, reason }, `refused Raft traffic from ${remote}: ${reason}`);
        this.audit.write({ event: "auth.failure", mechanism: "certificate", remote, reason: `peer port: ${reason}`, result: "denied" });
      },
      // A joining node knows only the members it was configured with; the leader may be
      // another. Its address is looked up among the members, never taken from its stream.
      onUnknownSender: (peerId) => this.memberLookup.find(peerId),
      onPeerState: (peerId, state) => log.info({ event: "peer", peer: peerId, state }, `peer ${peerId} ${state}`),
      onUnreachable: (peerId) => this.driver.unreachable(peerId),
      onInboundClosed: (peerId) => this.driver.peerStreamClosed(peerId),
      onFrameRejected: (peerId, reason) => log.warn({ event: "peer-frame-rejected", peer: peerId, reason }, `a frame from peer ${peerId} was refused: ${reason}`),
      maxBatchBytes: 4 * MiB,
    });
    this.driver = new RaftDriver({
      config,
      storage,
      bodies,
      fetchBodies: (keys) => this.fetchMissingBodies(keys, transport),
      transport,
      logger: log,
      metrics: this.metrics,
      hooks: {
        leaderChanged: (leaderId, isLeader) => this.onLeaderChanged(leaderId, isLeader),
        effects: (effects) => {
          const before = this.sessions.delivered;
          this.sessions.route(effects);
          this.metrics.delivered.inc(this.sessions.delivered - before);
        },
        removed: () => this.onRemoved(),
        // A deleted user's open streams end at once, before the next entry's deliveries go out.
        accessChanged: () => {
          for (const g of this.gates) g.revokeDeleted();
        },
        fatal: (error) => {
          this.introspection.setServing(false);
          this.resolveExit({ code: 1, reason: "fatal", error });
        },
      },
    });
    this.audit = config.auditLog === "log" ? new AuditLog({ node: config.nodeId, sink: (line) => log.info({ event: "audit", audit: JSON.parse(line) as unknown }, "audit") }) : new AuditLog({ node: config.nodeId, file: config.auditLog });
    this.memberLookup = new MemberLookup({
      selfId: config.nodeId,
      seeds: () => [...new Set([...config.initialCluster.map((m) => m.peerAddress), ...this.driver.members().map((m) => m.peerAddress)])].filter((a) => a !== ""),
      credentials: security.nodeChannelCredentials(),
      channelOptions: security.channelOptions,
      found: (id, address) => {
        if (this.stopping !== null || transport.hasPeer(id)) return;
        log.info({ event: "peer-found", peer: id, address }, `found member ${id} at ${address}`);
        transport.setPeer(id, address);
      },
    });
    this.bootstrap = new ClusterBootstrap({
      driver: this.driver,
      log,
      admin: setup.admin,
      retryMs: 1000,
      maxVersionOf: async (id) => {
        const address = this.driver.address(id)?.peerAddress ?? "";
        if (address === "") throw new Error(`the address of node ${id} is unknown`);
        const method = clusterServiceDefinition.Status as unknown as grpc.MethodDefinition<unknown, raftmq.v1.StatusResponse>;
        const answer = await this.forwarder.unary(address, method, {}, new grpc.Metadata(), Date.now() + leaderWaitMs);
        return answer.maxMachineVersion ?? 0;
      },
    });
    const options: grpc.ServerOptions = {
      "grpc.max_send_message_length": MAX_GRPC_MESSAGE_BYTES,
      "grpc.max_receive_message_length": MAX_GRPC_MESSAGE_BYTES,
      // A client that vanished without closing (a cut network, a frozen process) is noticed by
      // the pings it no longer answers: its streams end and its consumers go away.
      "grpc.keepalive_time_ms": config.clientKeepaliveMs,
      "grpc.keepalive_timeout_ms": config.clientKeepaliveTimeoutMs,
      "grpc.max_concurrent_streams": config.maxStreamsPerConnection,
    };
    this.clientServer = new grpc.Server(options);
    this.peerServer = new grpc.Server(transport.serverOptions());
    limitMetadataBytes(this.clientServer, config.maxMetadataBytes);
    limitMetadataBytes(this.peerServer, config.maxMetadataBytes + FORWARDED_METADATA_HEADROOM_BYTES);
    const builder = new CommandBuilder(
      () => this.driver.broker.settings(),
      () => this.driver.broker.machineVersion(),
    );
    const leaderWaitMs = config.tickMs * config.electionTicks * 2;
    this.alarms = new ResourceAlarms({
      memoryLimitBytes: config.memoryHighWatermarkBytes > 0 ? config.memoryHighWatermarkBytes : memoryLimitBytes(),
      memoryHighWatermark: config.memoryHighWatermarkBytes > 0 ? 1 : config.memoryHighWatermark,
      diskFreeLimitBytes: config.diskFreeLimitBytes,
      readings: processReadings(config.dataDir),
      changed: (raised, detail) => {
        if (raised.size > 0) log.warn({ event: "alarm-raised", alarms: [...raised], detail }, `publishing blocked: ${detail}`);
        else log.info({ event: "alarm-cleared" }, "resource alarms cleared on this node");
        this.metrics.alarms = raised;
        this.amqp?.setBlocked(this.publishBlocked());
      },
    });
    const statusMethod = clusterServiceDefinition.Status as unknown as grpc.MethodDefinition<unknown, raftmq.v1.StatusResponse>;
    this.clusterAlarms = new ClusterAlarms({
      peers: () => this.driver.members().map((m) => m.id).filter((id) => id !== config.nodeId),
      ask: async (id) => {
        const address = this.driver.address(id)?.peerAddress ?? "";
        if (address === "") throw new Error(`the address of node ${id} is unknown`);
        const answer = await this.forwarder.unary(address, statusMethod, {}, new grpc.Metadata(), Date.now() + config.alarmCheckMs);
        return { alarms: answer.alarms ?? [], detail: answer.alarmDetail ?? "" };
      },
      now: () => Date.now(),
      staleMs: 3 * config.alarmCheckMs,
      changed: () => {
        const remote = this.clusterAlarms.reason;
        if (remote !== "") log.warn({ event: "member-alarm-raised", detail: remote }, `publishing blocked by another member's alarm: ${remote}`);
        else log.info({ event: "member-alarms-cleared" }, "no other member has a resource alarm raised");
        this.amqp?.setBlocked(this.publishBlocked());
      },
    });
    const broker = brokerHandlers({
      driver: this.driver,
      builder,
      sessions: this.sessions,
      forwarder: this.forwarder,
      leaderWaitMs,
      maxStreamWindow: config.publishStreamWindow,
      consumerTimeoutMs: config.consumerTimeoutMs,
      // Long enough for a few elections, as a client's own resubscription would wait.
      consumeResumeMs: 3 * leaderWaitMs,
      stopping: () => this.stopping !== null,
      publishBlocked: () => this.publishBlocked(),
      log,
      metrics: this.metrics,
    });
    const cluster = clusterHandlers({
      driver: this.driver,
      builder,
      forwarder: this.forwarder,
      leaderWaitMs,
      version: RAFTMQ_VERSION,
      readyLag: READY_LAG,
      alarms: () => ({ alarms: [...this.alarms.active], detail: this.alarms.reason }),
    });
    const access = accessHandlers({ driver: this.driver, builder, forwarder: this.forwarder, leaderWaitMs });
    const authenticator = new Authenticator({ view: () => this.driver.broker, loopbackOnlyUsers: config.loopbackUsers });
    const gate = (port: "client" | "peer") => new AccessGate({ port, insecure: security.insecure, nodeId: config.nodeId, authenticator, view: () => this.driver.broker, audit: this.audit, log });
    this.gates = [gate("client"), gate("peer")];
    const [clientGate, peerGate] = this.gates;
    const servers: [grpc.Server, AccessGate][] = [
      [this.clientServer, clientGate],
      [this.peerServer, peerGate],
    ];
    if (config.clientPlaintextPort !== 0) {
      this.plaintextServer = new grpc.Server(options);
      limitMetadataBytes(this.plaintextServer, config.maxMetadataBytes);
      servers.push([this.plaintextServer, clientGate]);
      this.introspection.addToServer(this.plaintextServer);
    }
    const clientBroker = clientGate.wrap("Broker", brokerServiceDefinition, broker);
    this.amqp =
      config.amqpPort === -1 && config.amqpsPort === -1
        ? null
        : new AmqpServer({
            // Without TLS on the node, AMQP is its only port; with TLS, plain AMQP stays on loopback
            // (the node's own loopback address when it listens on one, as several local nodes do).
            host: security.insecure || isLoopbackAddress(`${config.host}:0`) ? config.host : "127.0.0.1",
            port: config.amqpPort,
            tls: config.amqpsPort === -1 ? null : { port: config.amqpsPort, context: amqpsContext(config), requestCert: config.clientCertAuth !== "none" },
            handlers: clientBroker,
            insecure: security.insecure,
            authenticator,
            view: () => this.driver.broker,
            audit: this.audit,
            log: log.child({ component: "amqp" }),
            version: RAFTMQ_VERSION,
            clusterName: "raftmq",
            maxBodyBytes: () => this.driver.broker.settings().maxMessageBytes,
            metrics: this.metrics,
          });
    for (const [server, gate] of servers) {
      server.addService(brokerServiceDefinition, gate === clientGate ? clientBroker : gate.wrap("Broker", brokerServiceDefinition, broker));
      server.addService(clusterServiceDefinition, gate.wrap("Cluster", clusterServiceDefinition, cluster));
      server.addService(accessServiceDefinition, gate.wrap("Access", accessServiceDefinition, access));
    }
    transport.addService(this.peerServer);
    this.introspection.addToServer(this.clientServer);
    const electionMs = config.tickMs * config.electionTicks;
    this.removalProbe = new RemovalProbe(
      {
        selfId: config.nodeId,
        isMember: () => {
          const conf = this.driver.status().confState;
          return conf.voters.includes(config.nodeId) || conf.learners.includes(config.nodeId);
        },
        leaderId: () => this.driver.leaderId,
        peerAddresses: () => this.driver.members().filter((m) => m.id !== config.nodeId).map((m) => m.peerAddress),
        removed: () => this.onRemoved(),
        credentials: security.nodeChannelCredentials(),
        channelOptions: security.channelOptions,
      },
      3 * electionMs,
      Math.max(200, electionMs),
    );
  }

  private onRemoved(): void {
    this.log.warn({ event: "removed" }, "this node was removed from the cluster; stopping");
    void this.shutdown({ transfer: false }).then(() => this.resolveExit({ code: 0, reason: "removed" }));
  }

  static async start(config: NodeConfig, log: Logger, options: NodeStartOptions = {}, setup?: NodeSecuritySetup): Promise<RaftmqNode> {
    let needsAdding = false;
    const security = setup ?? securitySetup(config);
    const calls = options.clusterCalls ?? grpcClusterCallsWith(security.security.nodeChannelCredentials(), security.security.channelOptions);
    if (config.statefulSet !== null) {
      const deciding =
        readIdentityRecord(config.dataDir) === null ? await StartupResponder.listen(`${config.host}:${config.clientPort}`, RAFTMQ_VERSION, security.security.clientServerCredentials()) : null;
      let plan: Awaited<ReturnType<typeof planStatefulSetStart>>;
      try {
        plan = await planStatefulSetStart(config, { calls, ...(options.startLimits && { limits: options.startLimits }) });
      } finally {
        await deciding?.close();
      }
      log = log.child({ node: plan.config.nodeId });
      log.info({ event: "statefulset-startup", pod: config.podName, decision: plan.decision, nodeId: plan.config.nodeId, join: plan.config.join }, "decided how to start");
      config = plan.config;
      needsAdding = plan.needsAdding;
    }
    if (security.security.insecure) {
      log.warn({ event: "insecure" }, "RUNNING INSECURE (--insecure): no TLS on any port and no authentication; anyone who reaches a port can read, change or delete everything. Never use this in production");
    }
    const opening = performance.now();
    const storage = await RaftStorage.open({ dir: config.dataDir });
    let node: RaftmqNode | undefined;
    let bodies: BodyStore;
    try {
      bodies = await BodyStore.open({ dir: join(config.dataDir, BODIES_DIR) }, (error) => node?.driver.fail(error));
    } catch (err) {
      await storage.close();
      throw err;
    }
    log.info(
      { event: "storage-opened", logStart: storage.firstIndex(), logEnd: storage.lastIndex(), commit: storage.initialState().hardState.commit, ms: Math.round(performance.now() - opening) },
      "log and body store opened and verified",
    );
    try {
      node = new RaftmqNode(config, storage, bodies, log, security);
    } catch (err) {
      await storage.close();
      await bodies.close();
      throw err;
    }
    try {
      await node.listen();
    } catch (err) {
      await node.shutdown({ transfer: false });
      throw err;
    }
    node.driver.start();
    node.alarms.start(config.alarmCheckMs);
    node.clusterAlarmTimer = setInterval(() => void node.clusterAlarms.poll(), config.alarmCheckMs);
    node.clusterAlarmTimer.unref();
    node.removalProbe.start();
    if (needsAdding) node.startJoinLoop({ ...options, clusterCalls: calls });
    node.readinessTimer = setInterval(() => node.introspection.setServing(nodeReady(node.driver, READY_LAG)), 200);
    return node;
  }

  private async listen(): Promise<void> {
    const { host } = this.config;
    const { security } = this.setup;
    const peer = await bind(this.peerServer, `${host}:${this.config.peerPort}`, security.peerServerCredentials());
    const client = await bind(this.clientServer, `${host}:${this.config.clientPort}`, security.clientServerCredentials());
    // Plaintext beside TLS only on the loopback interface, for local tools.
    const plaintext = this.plaintextServer === null ? 0 : await bind(this.plaintextServer, `127.0.0.1:${this.config.clientPlaintextPort}`, grpc.ServerCredentials.createInsecure());
    this.http = await startOpsHttp(host, this.config.httpPort, this.metrics, {
      healthy: () => {
        const h = this.storage.health();
        if (!h.ok) return { ok: false, detail: `storage failed: ${h.error.message}` };
        return this.driver.healthy ? { ok: true, detail: "alive" } : { ok: false, detail: "the node stopped after a failure" };
      },
      ready: () => {
        const s = this.driver.status();
        if (nodeReady(this.driver, READY_LAG)) return { ok: true, detail: `leader ${s.leaderId}, applied ${this.driver.appliedIndex} of ${s.commit}` };
        return { ok: false, detail: s.leaderId === 0 ? "no leader known" : `catching up: applied ${this.driver.appliedIndex} of ${s.commit}` };
      },
    });
    const address = this.http.address();
    const amqp = (await this.amqp?.listen()) ?? { amqp: 0, amqps: 0 };
    this.ports = {
      client,
      peer,
      http: typeof address === "object" && address !== null ? address.port : this.config.httpPort,
      ...(plaintext !== 0 ? { clientPlaintext: plaintext } : {}),
      ...(this.config.amqpPort !== -1 ? { amqp: amqp.amqp } : {}),
      ...(this.config.amqpsPort !== -1 ? { amqps: amqp.amqps } : {}),
    };
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
          const learned = this.driver.members().map((m) => aliasAddress(m.clientAddress, config.hostAlias));
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

  private onLeaderChanged(leaderId: number, isLeader: boolean): void {
    if (isLeader) this.bootstrap.leading();
    if (!isLeader) {
      if (this.sessions.size > 0) {
        const failure = toGrpcFailure(new NodeUnavailableError("leadership moved; subscribe again", this.driver.leaderClientAddress()));
        const ended = this.sessions.endAll(failure);
        this.log.info({ event: "sessions-ended", sessions: ended.length, leader: leaderId }, "ended consume streams after losing leadership");
      }
    }
  }

  /** Why publishes are refused now: this node's alarms, then the other members'; "" when none is raised. */
  private publishBlocked(): string {
    return [this.alarms.reason, this.clusterAlarms.reason].filter((r) => r !== "").join("; ");
  }

  /** Fetches bodies a restored snapshot refers to from the peers, the leader first, and stores them. */
  private async fetchMissingBodies(keys: number[], transport: PeerTransport): Promise<void> {
    const self = this.config.nodeId;
    const started = performance.now();
    const outcome = await fetchBodies(keys, {
      peers: () => {
        const leader = this.driver.leaderId;
        const others = this.driver
          .members()
          .map((m) => m.id)
          .filter((id) => id !== self && id !== leader);
        return leader > 0 && leader !== self ? [leader, ...others] : others;
      },
      fetch: (peer, chunk) => transport.fetchBodies(peer, chunk),
      store: (found) => this.bodies.put(found),
      pause: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      stopped: () => this.stopping !== null,
    });
    this.driver.bodyKeeper.missing = outcome.unreachable;
    const line = { event: "bodies-fetched", asked: keys.length, ...outcome, ms: Math.round(performance.now() - started) };
    if (outcome.unreachable > 0) this.log.error(line, `${outcome.unreachable} message bodies could not be fetched from any peer`);
    else this.log.info(line, "fetched the message bodies the snapshot refers to");
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
    this.removalProbe.stop();
    this.alarms.stop();
    if (this.clusterAlarmTimer !== null) clearInterval(this.clusterAlarmTimer);
    this.joinLoop?.stop();
    this.bootstrap.stop();
    this.memberLookup.stop();
    for (const g of this.gates) g.close();
    if (transfer && this.driver.isLeader) await this.transferLeadership(deadline);
    this.sessions.endAll(toGrpcFailure(new NodeUnavailableError("the node is shutting down; subscribe again", this.driver.leaderClientAddress())));
    await this.amqp?.close("the node is shutting down");
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
    this.plaintextServer?.forceShutdown();
    this.forwarder.close();
    if (this.http !== null) {
      const http = this.http;
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
    await this.storage.close();
    await this.driver.bodyKeeper.stop();
    await this.bodies.close();
    await this.audit.close();
    this.log.info({ event: "stopped" }, "node stopped");
    // A removal or a failure has settled the exit already; settling again changes nothing.
    this.resolveExit({ code: 0, reason: "stopped" });
  }

  private async transferLeadership(deadline: number): Promise<void> {
    const waitMs = Math.max(0, Math.min(deadline - Date.now(), this.config.tickMs * this.config.electionTicks * 2));
    this.log.info({ event: "leadership-transfer" }, "handing leadership over before shutdown");
    try {
      const to = await this.driver.transferLeadership(0, waitMs);
      this.log.info({ event: "leadership-transferred", to }, `leadership moved to node ${to}`);
    } catch (err) {
      this.log.warn({ err }, "leadership transfer on shutdown failed");
    }
  }
}

/** The TLS settings of the AMQPS port: the client port's certificate and client CA. */
function amqpsContext(config: NodeConfig): SecureContextOptions {
  const read = (file: string) => readFileSync(file);
  return {
    cert: read(config.clientTlsCertFile !== "" ? config.clientTlsCertFile : config.tlsCertFile),
    key: read(config.clientTlsKeyFile !== "" ? config.clientTlsKeyFile : config.tlsKeyFile),
    ca: read(config.clientTlsCaFile !== "" ? config.clientTlsCaFile : config.tlsCaFile),
    minVersion: "TLSv1.2",
  };
}

/** The bootstrap administrator from config: a name, and a password from a file or the environment. */
function bootstrapAdmin(config: NodeConfig, env: Readonly<Record<string, string | undefined>>): BootstrapAdmin | null {
  if (config.bootstrapAdminUser === "") return null;
  let password = env[BOOTSTRAP_ADMIN_PASSWORD_ENV] ?? "";
  if (config.bootstrapAdminPasswordFile !== "") {
    try {
      password = readFileSync(config.bootstrapAdminPasswordFile, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      throw new ConfigError(`cannot read bootstrap-admin-password-file ${config.bootstrapAdminPasswordFile}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (password === "") {
    throw new ConfigError(`bootstrap-admin-user ${config.bootstrapAdminUser} needs a password: bootstrap-admin-password-file or env ${BOOTSTRAP_ADMIN_PASSWORD_ENV}`);
  }
  return { user: config.bootstrapAdminUser, password };
}

/** A StatefulSet pod's certificate names its ordinal's first id and covers every later one of it. */
export const sameStatefulSetSlot: CertificateCoverage = (certId, id) => {
  if (certId <= 0 || id <= 0) return false;
  return certId === id || ordinalOfNodeId(certId).ordinal === ordinalOfNodeId(id).ordinal;
};
