// How a StatefulSet pod starts: it reads its identity record, asks the other members whether a
// cluster already runs, applies decideStartup, and, when it joins, keeps asking the cluster to add
// it until the membership lists it.
import * as grpc from "@grpc/grpc-js";
import type { raftmq } from "@raftmq/proto";
import { clusterServiceDefinition } from "@raftmq/proto/grpc";
import { type IdentityRecord, readIdentityRecord, writeIdentityRecord } from "./identity-record.ts";
import type { NodeConfig } from "./node-config.ts";
import { decideStartup, ordinalOfNodeId, type StartupDecision, type StatefulSetIdentity } from "./statefulset-identity.ts";

export interface MemberStatus {
  /** 0: a pod still deciding how to start (see StartupResponder). */
  nodeId: number;
  leaderId: number;
  leaderClientAddress: string;
  memberIds: number[];
  /** The node's Raft term: 0 while deciding, 1 after bootstrap, above 1 once any election began. */
  term: number;
  /** The last index of its log: the bootstrap writes one entry per founder, a leader more. */
  lastIndex: number;
}

/**
 * A member that has never taken part in the cluster beyond its own bootstrap: deciding how to
 * start, or bootstrapped (term 1, the founders' conf changes) with no election since, so it has
 * neither voted (the first campaign is for term 2) nor stored an entry from a leader.
 */
export function isFresh(s: MemberStatus, founders: number): boolean {
  return s.leaderId === 0 && s.term <= 1 && s.lastIndex <= founders;
}

/** The Cluster calls startup makes; gRPC in production, stand-ins in tests. */
export interface ClusterCalls {
  status(clientAddress: string, timeoutMs: number): Promise<MemberStatus>;
  addMember(clientAddress: string, member: { id: number; peerAddress: string; clientAddress: string }, timeoutMs: number): Promise<void>;
  removeMember(clientAddress: string, id: number, timeoutMs: number): Promise<void>;
}

export interface StatefulSetStartLimits {
  /** Deadline of one Cluster call. */
  callTimeoutMs: number;
  /** Pause between rounds of asking. */
  retryMs: number;
  /**
   * How long a pod with an empty volume waits for a live cluster (or, a founder, for every other
   * founder to answer as fresh) before it gives up and its pod is restarted.
   */
  joinWaitMs: number;
  /** Rounds of the add-self loop before the node gives up. */
  maxJoinRounds: number;
}

export const DEFAULT_STATEFULSET_START_LIMITS: Readonly<StatefulSetStartLimits> = {
  callTimeoutMs: 1000,
  retryMs: 500,
  joinWaitMs: 60_000,
  maxJoinRounds: 1200,
};

export class StartupWaitError extends Error {
  override name = "StartupWaitError";
}

export interface StatefulSetStart {
  /** The configuration to run with: nodeId and join as decided. */
  config: NodeConfig;
  decision: StartupDecision;
  /** The node must get itself added (AddMember) once it listens. */
  needsAdding: boolean;
}

interface StartDeps {
  calls: ClusterCalls;
  limits: StatefulSetStartLimits;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function othersOf(identity: StatefulSetIdentity): string[] {
  return identity.initialCluster.filter((m) => ordinalOfNodeId(m.id).ordinal !== identity.ordinal).map((m) => m.clientAddress);
}

async function askEach(calls: ClusterCalls, addresses: readonly string[], timeoutMs: number): Promise<(MemberStatus | null)[]> {
  return Promise.all(addresses.map((a) => calls.status(a, timeoutMs).catch(() => null)));
}

async function ask(calls: ClusterCalls, addresses: readonly string[], timeoutMs: number): Promise<MemberStatus[]> {
  return (await askEach(calls, addresses, timeoutMs)).filter((a): a is MemberStatus => a !== null);
}

/** Reads the record or learns the cluster's state, decides, and writes the record for next time. */
export async function planStatefulSetStart(config: NodeConfig, deps: Partial<StartDeps> = {}): Promise<StatefulSetStart> {
  const identity = config.statefulSet;
  if (identity === null) throw new Error("planStatefulSetStart needs a config with a StatefulSet identity");
  const calls = deps.calls ?? grpcClusterCalls;
  const limits = deps.limits ?? DEFAULT_STATEFULSET_START_LIMITS;
  const sleep = deps.sleep ?? defaultSleep;
  const now = deps.now ?? Date.now;
  const record = readIdentityRecord(config.dataDir);
  if (record !== null) {
    const founder = identity.initialCluster.some((m) => m.id === record.nodeId);
    return { config: { ...config, nodeId: record.nodeId, join: !founder }, decision: { kind: "restart" }, needsAdding: !record.joined };
  }

  // A founder with an empty volume cannot tell "the cluster was never created" from "my volume
  // was lost" by itself. It bootstraps only when every other founder answers and none has ever
  // held Raft state; a member with state, or one that does not answer, may hold entries this
  // pod once acknowledged, so it waits for a leader and joins under a new id instead (or gives
  // up after joinWaitMs, and the pod is restarted).
  const others = othersOf(identity);
  const started = now();
  let reachable: MemberStatus | null = null;
  let freshEverywhere = false;
  let lastSeen = "no answers yet";
  for (;;) {
    const answers = await askEach(calls, others, limits.callTimeoutMs);
    reachable = answers.find((a): a is MemberStatus => a !== null && a.leaderId !== 0) ?? null;
    if (reachable !== null) break;
    const answered = answers.filter((a): a is MemberStatus => a !== null);
    if (!identity.joinAsLearner && answered.length === others.length && answered.every((a) => isFresh(a, identity.initialCluster.length))) {
      freshEverywhere = true;
      break;
    }
    const silent = others.filter((_, i) => answers[i] === null);
    const withState = answered.filter((a) => !isFresh(a, identity.initialCluster.length)).map((a) => a.nodeId);
    lastSeen = `${silent.length > 0 ? `no answer from ${silent.join(", ")}` : "every founder answered"}${withState.length > 0 ? `; members ${withState.join(", ")} hold state but know no leader` : ""}`;
    if (now() - started >= limits.joinWaitMs) break;
    await sleep(limits.retryMs);
  }
  if (reachable === null && !freshEverywhere && !identity.joinAsLearner) {
    throw new StartupWaitError(`founder ${identity.nodeId} has an empty data dir and could not tell a new cluster from a lost volume within ${limits.joinWaitMs} ms (${lastSeen}); it bootstraps only when every founder answers and none holds state`);
  }
  const decision = decideStartup({
    dataDirEmpty: true,
    clusterReachable: reachable !== null,
    memberIds: reachable?.memberIds ?? [],
    myId: identity.nodeId,
    joinAsLearner: identity.joinAsLearner,
  });
  let next: IdentityRecord;
  switch (decision.kind) {
    case "bootstrap":
      next = { nodeId: decision.nodeId, joined: true };
      break;
    case "join":
    case "replace":
      next = { nodeId: decision.nodeId, joined: false };
      break;
    case "wait":
      throw new StartupWaitError(decision.reason);
    case "restart":
      throw new Error("decideStartup chose restart for an empty data dir");
    default: {
      const never: never = decision;
      throw new Error(`unknown startup decision ${JSON.stringify(never)}`);
    }
  }
  writeIdentityRecord(config.dataDir, next);
  return { config: { ...config, nodeId: next.nodeId, join: decision.kind !== "bootstrap" }, decision, needsAdding: !next.joined };
}

export interface JoinLoopHost {
  selfId: number;
  peerAddress: string;
  clientAddress: string;
  /** Client addresses to ask: the founders and the members this node has learned of. */
  knownClientAddresses(): string[];
  /** The address to dial for one a member reported (host aliases applied). */
  dialAddress(address: string): string;
  /** Called once the membership lists this node. */
  joined(): void;
  giveUp(reason: string): void;
  log(event: string, detail: Record<string, unknown>): void;
}

/**
 * Asks the cluster to add this node until its membership does. Before adding, it removes the
 * earlier incarnations of this ordinal that the cluster still counts: their state is gone, and a
 * voter that never answers only weakens the quorum. Idempotent, so a restart mid-way is safe.
 */
export class JoinLoop {
  private stopped = false;
  readonly done: Promise<void>;

  constructor(
    private readonly host: JoinLoopHost,
    private readonly deps: { calls?: ClusterCalls; limits?: StatefulSetStartLimits; sleep?: (ms: number) => Promise<void> } = {},
  ) {
    this.done = this.run();
  }

  stop(): void {
    this.stopped = true;
  }

  private async run(): Promise<void> {
    const calls = this.deps.calls ?? grpcClusterCalls;
    const limits = this.deps.limits ?? DEFAULT_STATEFULSET_START_LIMITS;
    const sleep = this.deps.sleep ?? defaultSleep;
    const { selfId } = this.host;
    const mine = ordinalOfNodeId(selfId);
    for (let round = 0; round < limits.maxJoinRounds; round++) {
      if (this.stopped) return;
      const answers = await ask(calls, this.host.knownClientAddresses(), limits.callTimeoutMs);
      const live = answers.find((a) => a.leaderId !== 0 && a.nodeId !== selfId);
      if (live !== undefined) {
        if (live.memberIds.includes(selfId)) {
          this.host.joined();
          return;
        }
        const target = live.leaderClientAddress !== "" ? this.host.dialAddress(live.leaderClientAddress) : (this.host.knownClientAddresses()[0] ?? "");
        const stale = live.memberIds.filter((id) => id !== selfId && ordinalOfNodeId(id).ordinal === mine.ordinal && ordinalOfNodeId(id).generation < mine.generation).sort((a, b) => a - b);
        try {
          for (const id of stale) {
            this.host.log("remove-stale-incarnation", { id });
            await calls.removeMember(target, id, limits.callTimeoutMs * 5);
          }
          this.host.log("add-member", { id: selfId, via: target });
          await calls.addMember(target, { id: selfId, peerAddress: this.host.peerAddress, clientAddress: this.host.clientAddress }, limits.callTimeoutMs * 5);
        } catch (err) {
          this.host.log("add-member-failed", { error: err instanceof Error ? err.message : String(err) });
        }
      }
      if (this.stopped) return;
      await sleep(limits.retryMs);
    }
    if (!this.stopped) this.host.giveUp(`not added to the cluster after ${limits.maxJoinRounds} rounds`);
  }
}

function unary<Q, R>(address: string, method: grpc.MethodDefinition<Q, R>, request: Q, timeoutMs: number, credentials: grpc.ChannelCredentials, channelOptions: grpc.ChannelOptions): Promise<R> {
  const client = new grpc.Client(address, credentials, channelOptions);
  return new Promise<R>((resolve, reject) => {
    client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, value) =>
      err !== null || value === undefined ? reject(err ?? new Error(`no answer to ${method.path}`)) : resolve(value),
    );
  }).finally(() => client.close());
}

/** Cluster calls over gRPC with `credentials` (the node certificate, on a secure cluster). */
export function grpcClusterCallsWith(credentials: grpc.ChannelCredentials, channelOptions: grpc.ChannelOptions = {}): ClusterCalls {
  return {
  async status(address, timeoutMs) {
    const s: raftmq.v1.StatusResponse.$Properties = await unary(address, clusterServiceDefinition.Status, {}, timeoutMs, credentials, channelOptions);
    return {
      nodeId: Number(s.nodeId ?? 0),
      leaderId: Number(s.leaderId ?? 0),
      leaderClientAddress: s.leaderClientAddress ?? "",
      memberIds: (s.members ?? []).map((m) => Number(m.id ?? 0)),
      term: Number(s.term ?? 0),
      lastIndex: Number(s.lastIndex ?? 0),
    };
  },
  async addMember(address, member, timeoutMs) {
    await unary(address, clusterServiceDefinition.AddMember, member, timeoutMs, credentials, channelOptions);
  },
  async removeMember(address, id, timeoutMs) {
    await unary(address, clusterServiceDefinition.RemoveMember, { id }, timeoutMs, credentials, channelOptions);
  },
};
}

export const grpcClusterCalls: ClusterCalls = grpcClusterCallsWith(grpc.credentials.createInsecure());
