// A node's identity and its cluster's addresses, derived from where a StatefulSet put it: the pod
// name gives the ordinal, the ordinal gives the node id, and a host template gives every member's
// DNS name. Also the startup decision that keeps a pod whose volume was lost from voting with an
// empty log. Pure: the node gathers the facts (env, data dir, peers' Cluster.Status) and acts.

/** Ordinals at or above this are refused: a typo in a pod name should not create node 40001. */
export const MAX_ORDINAL = 1022;
/** Ids of one ordinal are `ordinal + 1 + generation * ID_STRIDE`, so every incarnation is distinct. */
export const ID_STRIDE = MAX_ORDINAL + 2;
/** Generations an ordinal may go through (volume losses) before we refuse to mint another id. */
export const MAX_GENERATION = 1000;
/** Largest initial cluster: Raft gains nothing from more voters and pays on every commit. */
export const MAX_INITIAL_CLUSTER_SIZE = 15;
/** Aliases accepted in one --host-alias value. */
export const MAX_HOST_ALIASES = 256;

export const DEFAULT_INITIAL_CLUSTER_SIZE = 3;

export type IdentityProblem =
  | { kind: "bad-pod-name"; podName: string }
  | { kind: "ordinal-out-of-range"; ordinal: number; max: number }
  | { kind: "bad-initial-cluster-size"; size: number; max: number }
  | { kind: "bad-template"; template: string; reason: string }
  | { kind: "missing-namespace"; template: string }
  | { kind: "bad-host-alias"; entry: string; reason: string }
  | { kind: "bad-port"; name: string; port: number }
  | { kind: "bad-node-id"; id: number };

function describe(problem: IdentityProblem): string {
  switch (problem.kind) {
    case "bad-pod-name":
      return `pod name ${JSON.stringify(problem.podName)} does not end in -<ordinal> (e.g. raftmq-0)`;
    case "ordinal-out-of-range":
      return `ordinal ${problem.ordinal} is out of range [0, ${problem.max}]`;
    case "bad-initial-cluster-size":
      return `initial-cluster-size ${problem.size} is out of range [1, ${problem.max}]`;
    case "bad-template":
      return `peer-host-template ${JSON.stringify(problem.template)}: ${problem.reason}`;
    case "missing-namespace":
      return `peer-host-template ${JSON.stringify(problem.template)} uses {namespace} but POD_NAMESPACE is not set`;
    case "bad-host-alias":
      return `host-alias ${JSON.stringify(problem.entry)}: ${problem.reason}`;
    case "bad-port":
      return `${problem.name} ${problem.port} is not a port in [1, 65535]`;
    case "bad-node-id":
      return `node id ${problem.id} is not a positive integer`;
    default: {
      const never: never = problem;
      return String(never);
    }
  }
}

export class StatefulSetIdentityError extends Error {
  override name = "StatefulSetIdentityError";
  constructor(readonly problem: IdentityProblem) {
    super(describe(problem));
  }
}

export interface StatefulSetIdentityInput {
  /** POD_NAME from the downward API, e.g. `raftmq-2`. */
  podName: string;
  /** POD_NAMESPACE from the downward API; needed only when the template uses {namespace}. */
  namespace?: string | undefined;
  /** Ordinals 0..size-1 found the cluster; higher ordinals join as learners. */
  initialClusterSize?: number | undefined;
  /** DNS name of one ordinal, e.g. `raftmq-{ordinal}.raftmq-headless.{namespace}.svc.cluster.local`. */
  peerHostTemplate: string;
  peerPort: number;
  clientPort: number;
  /** Parsed --host-alias: a host name of the template maps to the address dialed instead. */
  hostAliases?: ReadonlyMap<string, string> | undefined;
}

export interface StatefulSetMemberAddress {
  id: number;
  peerAddress: string;
  clientAddress: string;
}

export interface StatefulSetIdentity {
  ordinal: number;
  /** The first incarnation's id, ordinal + 1. A node whose data dir holds an id uses that one. */
  nodeId: number;
  /** The founding members (ordinals 0..size-1), which a joiner asks to add it. */
  initialCluster: StatefulSetMemberAddress[];
  /** True for ordinals past the initial cluster: start with --join and be added as a learner. */
  joinAsLearner: boolean;
  advertiseHost: string;
}

const POD_NAME = /^([a-z0-9]([a-z0-9-]*[a-z0-9])?)-(0|[1-9][0-9]*)$/;
const PLACEHOLDER = /\{([^{}]*)\}/g;
const KNOWN_PLACEHOLDERS = new Set(["ordinal", "namespace", "statefulset"]);
const DNS_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Splits `raftmq-2` into the StatefulSet's name and the ordinal. */
export function parsePodName(podName: string): { statefulSet: string; ordinal: number } {
  const match = POD_NAME.exec(podName.trim());
  const statefulSet = match?.[1];
  const digits = match?.[3];
  if (statefulSet === undefined || digits === undefined) throw new StatefulSetIdentityError({ kind: "bad-pod-name", podName });
  const ordinal = Number(digits);
  if (!Number.isSafeInteger(ordinal) || ordinal > MAX_ORDINAL) {
    throw new StatefulSetIdentityError({ kind: "ordinal-out-of-range", ordinal, max: MAX_ORDINAL });
  }
  return { statefulSet, ordinal };
}

/** Parses `name=ip[,name=ip...]`. Targets are IPv4 addresses: the alias exists to skip DNS. */
export function parseHostAliases(raw: string): Map<string, string> {
  const aliases = new Map<string, string>();
  const trimmed = raw.trim();
  if (trimmed === "") return aliases;
  const entries = trimmed.split(",");
  if (entries.length > MAX_HOST_ALIASES) {
    throw new StatefulSetIdentityError({ kind: "bad-host-alias", entry: raw, reason: `more than ${MAX_HOST_ALIASES} aliases` });
  }
  for (const entry of entries) {
    const parts = entry.split("=");
    const name = parts[0]?.trim() ?? "";
    const ip = parts[1]?.trim() ?? "";
    if (parts.length !== 2) throw new StatefulSetIdentityError({ kind: "bad-host-alias", entry, reason: "must look like name=ip" });
    if (!DNS_NAME.test(name)) throw new StatefulSetIdentityError({ kind: "bad-host-alias", entry, reason: `${JSON.stringify(name)} is not a host name` });
    if (!IPV4.test(ip)) throw new StatefulSetIdentityError({ kind: "bad-host-alias", entry, reason: `${JSON.stringify(ip)} is not an IPv4 address` });
    const earlier = aliases.get(name);
    if (earlier !== undefined && earlier !== ip) {
      throw new StatefulSetIdentityError({ kind: "bad-host-alias", entry, reason: `${name} is already mapped to ${earlier}` });
    }
    aliases.set(name, ip);
  }
  return aliases;
}

/** The address to dial for a host: its alias when it has one, else itself. */
export function applyHostAlias(host: string, aliases: ReadonlyMap<string, string> | undefined): string {
  return aliases?.get(host) ?? host;
}

/** Fills one ordinal into the template and checks the result is a DNS name. */
export function renderPeerHost(template: string, values: { ordinal: number; namespace?: string | undefined; statefulSet: string }): string {
  const used = new Set<string>();
  for (const match of template.matchAll(PLACEHOLDER)) {
    const name = match[1] ?? "";
    if (!KNOWN_PLACEHOLDERS.has(name)) {
      throw new StatefulSetIdentityError({ kind: "bad-template", template, reason: `unknown placeholder {${name}}; known: {ordinal}, {namespace}, {statefulset}` });
    }
    used.add(name);
  }
  // Without the ordinal every member would get the same name: one node dialing itself N times.
  if (!used.has("ordinal")) throw new StatefulSetIdentityError({ kind: "bad-template", template, reason: "must contain {ordinal}" });
  const namespace = values.namespace?.trim() ?? "";
  if (used.has("namespace") && namespace === "") throw new StatefulSetIdentityError({ kind: "missing-namespace", template });
  const host = template.replace(PLACEHOLDER, (_, name: string) => {
    if (name === "ordinal") return String(values.ordinal);
    if (name === "namespace") return namespace;
    return values.statefulSet;
  });
  if (!DNS_NAME.test(host)) throw new StatefulSetIdentityError({ kind: "bad-template", template, reason: `${JSON.stringify(host)} is not a host name` });
  return host;
}

function checkPort(name: string, port: number): void {
  if (!Number.isSafeInteger(port) || port < 1 || port > 65535) throw new StatefulSetIdentityError({ kind: "bad-port", name, port });
}

export function resolveStatefulSetIdentity(input: StatefulSetIdentityInput): StatefulSetIdentity {
  const { statefulSet, ordinal } = parsePodName(input.podName);
  const size = input.initialClusterSize ?? DEFAULT_INITIAL_CLUSTER_SIZE;
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_INITIAL_CLUSTER_SIZE) {
    throw new StatefulSetIdentityError({ kind: "bad-initial-cluster-size", size, max: MAX_INITIAL_CLUSTER_SIZE });
  }
  checkPort("peer-port", input.peerPort);
  checkPort("client-port", input.clientPort);
  const hostOf = (n: number) => applyHostAlias(renderPeerHost(input.peerHostTemplate, { ordinal: n, namespace: input.namespace, statefulSet }), input.hostAliases);
  const initialCluster: StatefulSetMemberAddress[] = [];
  for (let n = 0; n < size; n++) {
    const host = hostOf(n);
    initialCluster.push({ id: nodeIdOf(n, 0), peerAddress: `${host}:${input.peerPort}`, clientAddress: `${host}:${input.clientPort}` });
  }
  return { ordinal, nodeId: nodeIdOf(ordinal, 0), initialCluster, joinAsLearner: ordinal >= size, advertiseHost: hostOf(ordinal) };
}

/** The id of one incarnation of an ordinal. */
export function nodeIdOf(ordinal: number, generation: number): number {
  if (!Number.isSafeInteger(ordinal) || ordinal < 0 || ordinal > MAX_ORDINAL) {
    throw new StatefulSetIdentityError({ kind: "ordinal-out-of-range", ordinal, max: MAX_ORDINAL });
  }
  if (!Number.isSafeInteger(generation) || generation < 0 || generation > MAX_GENERATION) {
    throw new RangeError(`generation ${generation} is out of range [0, ${MAX_GENERATION}]`);
  }
  return ordinal + 1 + generation * ID_STRIDE;
}

/** Inverse of nodeIdOf. */
export function ordinalOfNodeId(id: number): { ordinal: number; generation: number } {
  if (!Number.isSafeInteger(id) || id < 1) throw new StatefulSetIdentityError({ kind: "bad-node-id", id });
  return { ordinal: (id - 1) % ID_STRIDE, generation: Math.floor((id - 1) / ID_STRIDE) };
}

export interface StartupFacts {
  /** The data dir holds no Raft state (first start, or the volume was lost). */
  dataDirEmpty: boolean;
  /** Another member answered Cluster.Status and named a leader: the cluster exists and is live. */
  clusterReachable: boolean;
  /** The configuration that answer reported (voters and learners); ignored when not reachable. */
  memberIds: readonly number[];
  /** This pod's first-incarnation id, from resolveStatefulSetIdentity. */
  myId: number;
  /** From resolveStatefulSetIdentity: the ordinal is past the initial cluster. */
  joinAsLearner: boolean;
}

export type StartupDecision =
  /** Run from the data dir as the id stored there; the log decides the rest. */
  | { kind: "restart" }
  /** First start of a founding member: start with the initial cluster, as myId. */
  | { kind: "bootstrap"; nodeId: number }
  /** A new member: ask the leader to AddMember(nodeId) as a learner, then start with --join. */
  | { kind: "join"; nodeId: number }
  /**
   * The cluster still counts an earlier incarnation of this ordinal whose state is gone: remove
   * those ids (RemoveMember, one at a time), then join as nodeId, a never-used id.
   */
  | { kind: "replace"; removeIds: number[]; nodeId: number }
  /** Nothing can be done safely yet (a joiner with no live cluster to add it): retry later. */
  | { kind: "wait"; reason: string };

/**
 * Decides how a pod starts. The rule it enforces: a node never takes part in votes with less
 * state than it had before. A pod with its volume restarts as itself. A pod without one whose
 * cluster is live and still lists its ordinal lost its volume: rejoining under the old id would
 * let it grant votes and acknowledge entries it no longer holds, so it replaces the old id with a
 * new one that starts as a learner. When no member answers, a founding ordinal bootstraps: that
 * is the first start of the cluster (or the whole cluster down at once, which this cannot tell
 * apart; see deploy/README.md).
 */
export function decideStartup(facts: StartupFacts): StartupDecision {
  if (!facts.dataDirEmpty) return { kind: "restart" };
  const mine = ordinalOfNodeId(facts.myId);
  if (!facts.clusterReachable) {
    if (facts.joinAsLearner) return { kind: "wait", reason: "no member of the cluster answered with a leader; a new member needs one to be added" };
    return { kind: "bootstrap", nodeId: facts.myId };
  }
  // Sorted so every caller removes in the same order and logs read the same.
  const sameOrdinal = [...new Set(facts.memberIds)].filter((id) => ordinalOfNodeId(id).ordinal === mine.ordinal).sort((a, b) => a - b);
  const last = sameOrdinal.at(-1);
  if (last === undefined) {
    // A founding ordinal missing from a live cluster was removed earlier (every founder is in the
    // initial configuration), so its first id is spent: never hand a removed id out again.
    return { kind: "join", nodeId: facts.joinAsLearner ? facts.myId : nodeIdOf(mine.ordinal, mine.generation + 1) };
  }
  const nextGeneration = ordinalOfNodeId(last).generation + 1;
  return { kind: "replace", removeIds: sameOrdinal, nodeId: nodeIdOf(mine.ordinal, nextGeneration) };
}
