// The broker state machine: applies committed commands in log order and answers each with a
// result and effects (data for the leader to act on). Pure: time comes only from batch stamps.
import { int64 } from "./proto-int.ts";
import { raftmq } from "@raftmq/proto";
import {
  addUser,
  byCodeUnits,
  clearPermissions,
  deleteUser,
  forgetVhostPermissions,
  listPermissions,
  type Permissions,
  setPasswordHash,
  setPermissions,
  setUserTags,
  type User,
  type UserPermissions,
} from "./access-control.ts";
import { type BrokerError, invariant, notFound, outcomeUnknown, preconditionFailed, resourceExhausted, unknownDeliveryTag } from "./broker-error.ts";
import { type BodyRef, HeadPool, type MessageHead, type NewBody, type QueuedMessage, StringPool } from "./broker-message.ts";
import { type BrokerState, emptyState, type Session } from "./broker-state.ts";
import { settingsFromProto } from "./cluster-settings.ts";
import type { CommandResult, GetResult, PublishResult } from "./command-result.ts";
import { type DeadLetterReason, deadLetteredMessage, isDeadLetterCycle } from "./dead-letter.ts";
import type { Effect } from "./effect.ts";
import { assertNever, type Binding, bindingId, type DestinationKind, Exchange, type ExchangeType } from "./exchange.ts";
import { accessLimits, type BrokerLimits, resolveLimits } from "./limits.ts";
import { type LiveBodies, RangeGatherer } from "./live-bodies.ts";
import { requireMachineVersion } from "./machine-version.ts";
import { queueArgumentsFromProto } from "./queue-arguments.ts";
import { Consumer, Queue, type QueueArgs } from "./queue.ts";
import { decodeState, decodeStatePieces, encodeState, encodeStatePieces } from "./snapshot.ts";
import { type Command, type CommandKind, commandKind, noOperationError, parseExpiration, validateCommandOfKind } from "./validate-command.ts";
import { PRODUCER_RETRY_VERSION, versionGateError } from "./version-gate.ts";
import { builtinExchanges, DEFAULT_VHOST, Vhost } from "./vhost.ts";

type Header = raftmq.v1.Header.$Properties;

export interface QueueInfo {
  name: string;
  durable: boolean;
  exclusive: boolean;
  ownerSessionId: string;
  autoDelete: boolean;
  arguments: QueueArgs;
  messagesReady: number;
  messagesUnacknowledged: number;
  consumers: number;
  readyBytes: number;
  unackedBytes: number;
}

export interface ExchangeInfo {
  name: string;
  type: ExchangeType;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  alternateExchange: string;
  builtin: boolean;
}

export interface BindingInfo {
  /** The source. */
  exchange: string;
  /** The destination queue, or "" when the destination is an exchange. */
  queue: string;
  /** The destination exchange, or "" when the destination is a queue. */
  destinationExchange: string;
  routingKey: string;
  arguments: Header[];
}

/** What applying one entry did: results in command order, effects for the leader, bodies to store. */
export interface AppliedEntry {
  results: CommandResult[];
  effects: Effect[];
  bodies: NewBody[];
}


export interface ApplyMeta {
  index: number;
  timestamp: number;
  /** Position of the command in its entry's batch. */
  position?: number;
}

const exchangeTypes: Record<number, ExchangeType | undefined> = {
  [raftmq.v1.ExchangeType.EXCHANGE_TYPE_DIRECT]: "direct",
  [raftmq.v1.ExchangeType.EXCHANGE_TYPE_FANOUT]: "fanout",
  [raftmq.v1.ExchangeType.EXCHANGE_TYPE_TOPIC]: "topic",
  [raftmq.v1.ExchangeType.EXCHANGE_TYPE_HEADERS]: "headers",
};

const emptyBody = new Uint8Array(0);

type SettleAction = "ack" | "requeue" | "reject";

export class Broker {
  private readonly s: BrokerState;
  private effects: Effect[] = [];
  /** Bodies published (or restored from an older snapshot that held them) and not taken yet. */
  private newBodies: NewBody[] = [];
  /** Routing keys and heads of queued messages, each held once (memory only: nothing reads the pools' state). */
  private readonly strings = new StringPool();
  private readonly heads = new HeadPool();
  private readonly dirty: Queue[] = [];

  /**
   * `limits` are the settings a new cluster starts with (defaultLimits unless a test says
   * otherwise); a restored state brings its own. From then on only SetClusterSettings changes them.
   */
  constructor(limits?: Partial<BrokerLimits>, state?: BrokerState, restoredBodies?: NewBody[]) {
    this.s = state ?? emptyState(resolveLimits(limits));
    if (restoredBodies !== undefined) this.newBodies = restoredBodies;
  }

  private get limits(): BrokerLimits {
    return this.s.settings;
  }

  static restore(bytes: Uint8Array, limits?: Partial<BrokerLimits>): Broker {
    const resolved = resolveLimits(limits);
    const bodies: NewBody[] = [];
    return new Broker(resolved, decodeState(bytes, resolved, bodies), bodies);
  }

  snapshot(): Uint8Array {
    return encodeState(this.s);
  }

  /**
   * The same snapshot in pieces of about `maxPieceBytes`, for a caller that yields to other
   * work between pieces; their concatenation is what snapshot() returns. The first next() takes
   * the snapshot (synchronously, in time linear in the number of queued messages and dedup
   * entries, copying references only); commands may be applied after it, and the pieces that
   * follow still describe the state as it was then. A step that has no bytes to give yet (the
   * first, and those that build the first piece) yields an empty array.
   */
  snapshotPieces(maxPieceBytes?: number): Generator<Uint8Array, void, undefined> {
    return encodeStatePieces(this.s, maxPieceBytes);
  }

  /** Restores piece by piece: each next() decodes one piece; the generator returns the broker. */
  static *restoring(bytes: Uint8Array, limits?: Partial<BrokerLimits>): Generator<void, Broker, undefined> {
    const resolved = resolveLimits(limits);
    const bodies: NewBody[] = [];
    const state = yield* decodeStatePieces(bytes, resolved, bodies);
    return new Broker(resolved, state, bodies);
  }

  applyEntry(index: number, data: Uint8Array): AppliedEntry {
    if (data.byteLength === 0) return { results: [], effects: [], bodies: [] };
    const batch = raftmq.v1.CommandBatch.decode(data);
    const timestamp = int64(batch.timestampMs);
    const results: CommandResult[] = [];
    const effects: Effect[] = [];
    for (let i = 0; i < batch.commands.length; i++) {
      const out = this.apply(batch.commands[i] as Command, { index, timestamp, position: i });
      results.push(out.result);
      for (const e of out.effects) effects.push(e);
    }
    return { results, effects, bodies: this.takeNewBodies() };
  }

  /**
   * The bodies of messages published since the last call, for the node to store under their keys
   * before it acts on anything else of the apply: a delivery in the same apply reads them back.
   */
  takeNewBodies(): NewBody[] {
    const out = this.newBodies;
    if (out.length > 0) this.newBodies = [];
    return out;
  }

  /**
   * The bodies of the next messages the consumer's queue will hand out, head first: as many as
   * its prefetch, `most` at most, bodiless ones left out. A node reads these ahead of the
   * deliveries. Empty for a consumer the state does not have.
   */
  upcomingBodies(consumerId: string, most: number): BodyRef[] {
    const c = this.s.consumers.get(consumerId);
    if (c === undefined || c.cancelled) return [];
    return c.queue.upcomingBodies(c.prefetch === 0 ? most : Math.min(c.prefetch, most));
  }

  /**
   * The keys of every body a message in the state refers to (ready, held by a consumer, held by a
   * basic.get), as ascending ranges; and the frontier: every key handed out so far is below it.
   * A stored body below the frontier whose key is not listed can never be read again. Time in
   * the number of ranges for messages published one after another, once their chunks are full.
   */
  liveBodies(): LiveBodies {
    const s = this.s;
    const out = new RangeGatherer();
    const add = (m: QueuedMessage) => {
      if (m.bodySize > 0) out.add(m.bodyKey, m.bodyKey + 1);
    };
    // A run per queue, head first (the returned stack keeps its head at the end): messages
    // published one after another are one range, found a chunk at a time.
    for (const v of s.vhosts.values()) {
      for (const q of v.queues.values()) {
        for (let i = q.returned.length - 1; i >= 0; i--) add(q.returned[i] as QueuedMessage);
        const ready = q.ready.view();
        for (let i = 0; i < ready.length; ) {
          const alike = ready.alikeRun(i);
          const key = ready.bodyKey(i);
          if (alike > 1 && ready.bodySize(i) > 0 && ready.bodyKey(i + 1) === key + 1) {
            out.add(key, key + alike);
            i += alike;
            continue;
          }
          if (ready.bodySize(i) > 0) out.add(key, key + 1);
          i++;
        }
        out.endRun();
      }
    }
    for (const c of s.consumers.values()) for (const m of c.inflight.values()) add(m);
    for (const x of s.sessions.values()) for (const d of x.gets.values()) add(d.message);
    const { ranges, count } = out.take();
    return { frontier: s.nextBodyKey, ranges, count };
  }

  apply(command: Command, meta: ApplyMeta): { result: CommandResult; effects: Effect[] } {
    const s = this.s;
    // A new leader's clock may be behind the old one's: log time never goes backwards.
    if (meta.timestamp > s.now) s.now = meta.timestamp;
    this.effects = [];
    const kind = commandKind(command);
    const result = kind === null ? fail(noOperationError()) : this.execute(kind, command, meta);
    if (kind === "tick" || s.now - s.lastSweepAt >= this.limits.timerIntervalMs) this.sweep();
    this.flushDirty();
    const effects = this.effects;
    this.effects = [];
    return { result, effects };
  }

  lastTimestamp(): number {
    return this.s.now;
  }

  /**
   * The earliest log time at which applying a Tick would change something: the message at a
   * queue's head expiring, an unused queue reaching its x-expires, or dispatch an earlier apply
   * left for the next one (due at once: 0). Infinity when nothing waits on time, so an idle
   * leader need not write to the log at all. Idle producers are no deadline: the first command
   * after their idle time forgets them (dedup windows are bounded by count as well).
   */
  nextDeadline(): number {
    const s = this.s;
    if (s.backlog.size > 0) return 0;
    let next = Number.POSITIVE_INFINITY;
    for (const v of s.vhosts.values()) {
      for (const q of v.queues.values()) {
        if (q.deleted) continue;
        const expiresAt = q.headExpiresAt();
        if (expiresAt !== undefined && expiresAt !== 0 && expiresAt < next) next = expiresAt;
        const ttl = q.args.expiresMs;
        // The sweep removes the queue once now - lastUsedAt > ttl.
        if (ttl !== null && q.consumers.length === 0 && q.lastUsedAt + ttl + 1 < next) next = q.lastUsedAt + ttl + 1;
      }
    }
    return next;
  }

  /** The limits in force at the last applied entry. Replaced, never changed in place, by SetClusterSettings. */
  settings(): Readonly<BrokerLimits> {
    return this.s.settings;
  }

  /** The state-machine version in force at the last applied entry. */
  machineVersion(): number {
    return this.s.machineVersion;
  }

  /** undefined when the queue or its vhost does not exist. */
  queueInfo(name: string, vhost: string = DEFAULT_VHOST): QueueInfo | undefined {
    const q = this.s.vhosts.get(vhost)?.queues.get(name);
    return q === undefined ? undefined : queueInfoOf(q);
  }

  /** The vhost's queues in declaration order; none when it does not exist. */
  listQueues(vhost: string = DEFAULT_VHOST): QueueInfo[] {
    const v = this.s.vhosts.get(vhost);
    return v === undefined ? [] : [...v.queues.values()].map(queueInfoOf);
  }

  /** The vhost's exchanges, the predeclared ones first; none when it does not exist. */
  listExchanges(vhost: string = DEFAULT_VHOST): ExchangeInfo[] {
    const v = this.s.vhosts.get(vhost);
    if (v === undefined) return [];
    return [...v.exchanges.values()].map((e) => ({
      name: e.name,
      type: e.type,
      durable: e.durable,
      autoDelete: e.autoDelete,
      internal: e.internal,
      alternateExchange: e.alternateExchange,
      builtin: e.builtin,
    }));
  }

  listBindings(vhost: string = DEFAULT_VHOST): BindingInfo[] {
    const out: BindingInfo[] = [];
    const v = this.s.vhosts.get(vhost);
    if (v === undefined) return out;
    for (const e of v.exchanges.values()) {
      for (const b of e.bindings.values()) {
        const toQueue = b.destinationKind === "queue";
        out.push({
          exchange: b.exchange,
          queue: toQueue ? b.destination : "",
          destinationExchange: toQueue ? "" : b.destination,
          routingKey: b.routingKey,
          arguments: [...b.arguments],
        });
      }
    }
    return out;
  }

  consumersOfSession(sessionId: string): string[] {
    return [...(this.s.sessions.get(sessionId)?.consumers ?? [])];
  }

  // ---- users, vhosts and permissions ----

  user(name: string): User | undefined {
    return this.s.users.get(name);
  }

  /** Every user, sorted by name. */
  users(): User[] {
    return [...this.s.users.values()].sort((a, b) => byCodeUnits(a.name, b.name));
  }

  get userCount(): number {
    return this.s.users.size;
  }

  /** Every vhost name, sorted; "/" is always among them. */
  vhosts(): string[] {
    return [...this.s.vhosts.keys()].sort(byCodeUnits);
  }

  hasVhost(name: string): boolean {
    return this.s.vhosts.has(name);
  }

  /** What the user may do in the vhost; undefined when nothing was granted there. */
  permissions(user: string, vhost: string): Permissions | undefined {
    return this.s.permissions.get(user)?.get(vhost);
  }

  /** Permissions matching the filter (an unset field matches all), sorted by user, then vhost. */
  listPermissions(filter: { user?: string; vhost?: string } = {}): UserPermissions[] {
    return listPermissions(this.s, filter);
  }

  /** Goes up with every applied user, vhost or permission change: a cache stamped with an older value is stale. */
  get accessVersion(): number {
    return this.s.accessVersion;
  }

  // ---- commands ----

  private execute(kind: CommandKind, command: Command, meta: ApplyMeta): CommandResult {
    // Before validation: code that cannot apply the version must not answer the entry either, not
    // even with an error, since nodes that can apply it answer otherwise.
    if (kind === "setClusterSettings") requireMachineVersion(command.setClusterSettings?.machineVersion ?? 0, `entry ${meta.index}`);
    const gated = versionGateError(kind, command, this.s.machineVersion);
    if (gated !== null) return fail(gated);
    const invalid = validateCommandOfKind(kind, command, this.limits);
    if (invalid !== null) return fail(invalid);
    switch (kind) {
      case "declareExchange":
        return this.declareExchange(command.declareExchange ?? {});
      case "deleteExchange":
        return this.deleteExchange(command.deleteExchange ?? {});
      case "declareQueue":
        return this.declareQueue(command.declareQueue ?? {});
      case "deleteQueue":
        return this.deleteQueue(command.deleteQueue ?? {});
      case "purgeQueue":
        return this.purgeQueue(command.purgeQueue ?? {});
      case "bind":
        return this.bind(command.bind ?? {});
      case "unbind":
        return this.unbind(command.unbind ?? {});
      case "publish":
        return this.publish(command.publish ?? {});
      case "subscribe":
        return this.subscribe(command.subscribe ?? {});
      case "cancel":
        return this.cancel(command.cancel?.consumerId ?? "");
      case "setPrefetch": {
        const c = this.s.consumers.get(command.setPrefetch?.consumerId ?? "");
        if (c === undefined || c.cancelled) return fail(notFound(`no consumer "${command.setPrefetch?.consumerId ?? ""}"`));
        c.prefetch = command.setPrefetch?.prefetch ?? 0;
        this.markDirty(c.queue);
        return { ok: true, kind: "setPrefetch" };
      }
      case "ack": {
        const c = command.ack ?? {};
        return this.settle("ack", c.consumerId ?? "", c.sessionId ?? "", int64(c.deliveryTag), c.multiple ?? false, "ack");
      }
      case "ackTags": {
        const c = command.ackTags ?? {};
        return this.ackTags(c.consumerId ?? "", (c.deliveryTags ?? []).map(int64));
      }
      case "nack": {
        const c = command.nack ?? {};
        return this.settle("nack", c.consumerId ?? "", c.sessionId ?? "", int64(c.deliveryTag), c.multiple ?? false, c.requeue ? "requeue" : "reject");
      }
      case "reject": {
        const c = command.reject ?? {};
        return this.settle("reject", c.consumerId ?? "", c.sessionId ?? "", int64(c.deliveryTag), false, c.requeue ? "requeue" : "reject");
      }
      case "get":
        return this.get(command.get ?? {});
      case "consumerDown": {
        const id = command.consumerDown?.consumerId ?? "";
        const c = this.s.consumers.get(id);
        if (c === undefined) return fail(notFound(`no consumer "${id}"`));
        return { ok: true, kind: "consumerDown", requeued: this.downConsumer(c) };
      }
      case "sessionDown":
        return this.sessionDown(command.sessionDown?.sessionId ?? "");
      case "tick":
        return { ok: true, kind: "tick" };
      case "leaderTookOffice":
        return this.leaderTookOffice();
      case "setClusterSettings":
        return this.setClusterSettings(command.setClusterSettings ?? {});
      case "addUser":
        return addUser(this.s, command.addUser ?? {});
      case "deleteUser":
        return deleteUser(this.s, command.deleteUser?.name ?? "");
      case "setPasswordHash":
        return setPasswordHash(this.s, command.setPasswordHash?.name ?? "", command.setPasswordHash?.passwordHash ?? "");
      case "setUserTags":
        return setUserTags(this.s, command.setUserTags?.name ?? "", command.setUserTags?.tags ?? []);
      case "addVhost":
        return this.addVhost(command.addVhost?.name ?? "");
      case "deleteVhost":
        return this.deleteVhost(command.deleteVhost?.name ?? "");
      case "setPermissions":
        return setPermissions(this.s, command.setPermissions ?? {});
      case "clearPermissions":
        return clearPermissions(this.s, command.clearPermissions?.user ?? "", command.clearPermissions?.vhost ?? "");
      default:
        return assertNever(kind);
    }
  }

  /** The vhost a command's field names ("" is "/"), or undefined when it does not exist. */
  private vhostNamed(field: string | null | undefined): Vhost | undefined {
    return field == null || field === "" ? this.s.defaultVhost : this.s.vhosts.get(field);
  }

  private declareExchange(c: raftmq.v1.DeclareExchange.$Properties): CommandResult {
    const vh = this.vhostNamed(c.vhost);
    if (vh === undefined) return fail(noVhost(c.vhost));
    const name = c.name ?? "";
    const existing = vh.exchanges.get(name);
    if (c.passive) {
      return existing === undefined ? fail(notFound(`no exchange "${name}"`)) : { ok: true, kind: "declareExchange" };
    }
    const type = exchangeTypes[c.type ?? 0];
    invariant(type !== undefined, "validated exchange type");
    const want = {
      type,
      durable: c.durable ?? false,
      autoDelete: c.autoDelete ?? false,
      internal: c.internal ?? false,
      alternateExchange: c.alternateExchange ?? "",
    };
    if (existing !== undefined) {
      for (const key of ["type", "durable", "autoDelete", "internal", "alternateExchange"] as const) {
        if (existing[key] !== want[key]) {
          return fail(
            preconditionFailed(
              `inequivalent arg '${key}' for exchange "${name}": received '${String(want[key])}' but current is '${String(existing[key])}'`,
            ),
          );
        }
      }
      return { ok: true, kind: "declareExchange" };
    }
    if (name === "" || name.startsWith("amq.")) {
      return fail(preconditionFailed(`exchange name "${name}" is reserved: names starting with "amq." belong to the broker`));
    }
    if (this.exchangeCount() >= this.limits.maxExchanges) {
      return fail(resourceExhausted(`cannot declare exchange "${name}": the broker holds its limit of ${this.limits.maxExchanges} exchanges`));
    }
    vh.exchanges.set(name, new Exchange(name, type, want.durable, want.autoDelete, want.internal, want.alternateExchange, false));
    return { ok: true, kind: "declareExchange" };
  }

  private deleteExchange(c: raftmq.v1.DeleteExchange.$Properties): CommandResult {
    const vh = this.vhostNamed(c.vhost);
    if (vh === undefined) return fail(noVhost(c.vhost));
    const name = c.name ?? "";
    const ex = vh.exchanges.get(name);
    // Deleting an exchange that does not exist succeeds, as in RabbitMQ: delete is idempotent.
    if (ex === undefined) return { ok: true, kind: "deleteExchange" };
    if (ex.builtin) return fail(preconditionFailed(`exchange "${name}" is predeclared and cannot be deleted`));
    if (c.ifUnused && ex.bindings.size > 0) {
      return fail(preconditionFailed(`exchange "${name}" is in use: it has ${ex.bindings.size} bindings`));
    }
    this.removeExchange(vh, ex);
    return { ok: true, kind: "deleteExchange" };
  }

  /**
   * Deletes an exchange with the bindings it is the source or the destination of. An auto-delete
   * exchange that loses its last binding that way goes too, as in RabbitMQ (which also leaves
   * alternate-exchange and dead-letter references dangling: routing skips a missing exchange).
   */
  private removeExchange(vh: Vhost, ex: Exchange): void {
    for (const b of [...ex.bindings.values()]) {
      ex.removeBinding(b.id);
      this.s.bindingCount--;
      if (b.destinationKind === "queue") vh.queues.get(b.destination)?.bindings.delete(b);
      else vh.exchanges.get(b.destination)?.boundFrom.delete(b);
    }
    vh.exchanges.delete(ex.name);
    const sources = this.unbindAll(vh, ex.boundFrom);
    for (const source of sources) this.maybeAutoDeleteExchange(vh, source);
  }

  /**
   * Removes the bindings of a deleted destination (`bound`, its set of them) from their sources,
   * and answers the sources, in the order of the bindings, for the caller to auto-delete.
   */
  private unbindAll(vh: Vhost, bound: Set<Binding>): Exchange[] {
    const sources: Exchange[] = [];
    for (const b of [...bound]) {
      const source = vh.exchanges.get(b.exchange);
      if (source === undefined || source.removeBinding(b.id) === null) continue;
      this.s.bindingCount--;
      sources.push(source);
    }
    bound.clear();
    return sources;
  }

  /** Exchanges of every vhost, the predeclared ones included (maxExchanges counts them). */
  private exchangeCount(): number {
    let n = 0;
    for (const v of this.s.vhosts.values()) n += v.exchanges.size;
    return n;
  }

  private queueCount(): number {
    let n = 0;
    for (const v of this.s.vhosts.values()) n += v.queues.size;
    return n;
  }

  private declareQueue(c: raftmq.v1.DeclareQueue.$Properties): CommandResult {
    const s = this.s;
    const vh = this.vhostNamed(c.vhost);
    if (vh === undefined) return fail(noVhost(c.vhost));
    let name = c.name ?? "";
    const session = c.ownerSessionId ?? "";
    if (name === "" && !c.passive) name = `amq.gen-${s.nextGeneratedName++}`;
    const existing = vh.queues.get(name);
    if (existing !== undefined) {
      if (existing.exclusive && existing.ownerSessionId !== session) {
        return fail(preconditionFailed(`queue "${name}" is exclusive to another session`));
      }
      if (!c.passive) {
        const args = queueArgumentsFromProto(c.arguments);
        const mismatch = inequivalence(existing, c, args);
        if (mismatch !== null) return fail(preconditionFailed(`inequivalent arg '${mismatch}' for queue "${name}"`));
      }
      existing.lastUsedAt = s.now;
      return { ok: true, kind: "declareQueue", queue: name, messageCount: existing.readyCount, consumerCount: existing.consumers.length };
    }
    if (c.passive) return fail(notFound(`no queue "${name}"`));
    if (name.startsWith("amq.") && (c.name ?? "") !== "") {
      return fail(preconditionFailed(`queue name "${name}" is reserved: names starting with "amq." belong to the broker`));
    }
    if (this.queueCount() >= this.limits.maxQueues) {
      return fail(resourceExhausted(`cannot declare queue "${name}": the broker holds its limit of ${this.limits.maxQueues} queues`));
    }
    const q = new Queue(
      vh,
      name,
      s.nextQueueSeq++,
      c.durable ?? false,
      c.exclusive ?? false,
      c.exclusive ? session : "",
      c.autoDelete ?? false,
      queueArgumentsFromProto(c.arguments),
      s.now,
    );
    vh.queues.set(name, q);
    if (q.exclusive) this.session(session).exclusiveQueues.add(q);
    return { ok: true, kind: "declareQueue", queue: name, messageCount: 0, consumerCount: 0 };
  }

  private deleteQueue(c: raftmq.v1.DeleteQueue.$Properties): CommandResult {
    const vh = this.vhostNamed(c.vhost);
    if (vh === undefined) return fail(noVhost(c.vhost));
    const name = c.name ?? "";
    const q = vh.queues.get(name);
    if (q === undefined) return { ok: true, kind: "deleteQueue", messageCount: 0 };
    const locked = this.exclusiveError(q, c.sessionId ?? "");
    if (locked !== null) return fail(locked);
    if (c.ifUnused && q.consumers.length > 0) return fail(preconditionFailed(`queue "${name}" is in use: it has ${q.consumers.length} consumers`));
    if (c.ifEmpty && q.readyCount > 0) return fail(preconditionFailed(`queue "${name}" is not empty: it holds ${q.readyCount} messages`));
    return { ok: true, kind: "deleteQueue", messageCount: this.removeQueue(q) };
  }

  private purgeQueue(c: raftmq.v1.PurgeQueue.$Properties): CommandResult {
    const vh = this.vhostNamed(c.vhost);
    if (vh === undefined) return fail(noVhost(c.vhost));
    const name = c.name ?? "";
    const q = vh.queues.get(name);
    if (q === undefined) return fail(notFound(`no queue "${name}"`));
    const locked = this.exclusiveError(q, c.sessionId ?? "");
    if (locked !== null) return fail(locked);
    return { ok: true, kind: "purgeQueue", messageCount: q.takeAllReady() };
  }

  private bind(c: raftmq.v1.Bind.$Properties): CommandResult {
    const found = this.bindingEnds(c);
    if ("error" in found) return fail(found.error);
    const { source, destination } = found;
    if (this.s.bindingCount >= this.limits.maxBindings) {
      return fail(
        resourceExhausted(
          `cannot bind ${destination.kind} "${destination.name}" to exchange "${source.name}": the broker holds its limit of ${this.limits.maxBindings} bindings`,
        ),
      );
    }
    const b = source.addBinding(destination.kind, destination.name, c.routingKey ?? "", c.arguments ?? []);
    if (b !== null) {
      this.s.bindingCount++;
      destination.bound.add(b);
    }
    return { ok: true, kind: "bind" };
  }

  private unbind(c: raftmq.v1.Unbind.$Properties): CommandResult {
    const found = this.bindingEnds(c);
    if ("error" in found) return fail(found.error);
    const { vh, source, destination } = found;
    const b = source.removeBinding(bindingId(destination.kind, destination.name, c.routingKey ?? "", c.arguments ?? []));
    if (b !== null) {
      this.s.bindingCount--;
      destination.bound.delete(b);
      this.maybeAutoDeleteExchange(vh, source);
    }
    return { ok: true, kind: "unbind" };
  }

  /** The source exchange and the destination (a queue, or an exchange) a Bind or Unbind names. */
  private bindingEnds(
    c: raftmq.v1.Bind.$Properties,
  ): { vh: Vhost; source: Exchange; destination: { kind: DestinationKind; name: string; bound: Set<Binding> } } | { error: BrokerError } {
    const vh = this.vhostNamed(c.vhost);
    if (vh === undefined) return { error: noVhost(c.vhost) };
    const exName = c.exchange ?? "";
    const source = vh.exchanges.get(exName);
    if (source === undefined) return { error: notFound(`no exchange "${exName}"`) };
    if (source.name === "") return { error: preconditionFailed("the default exchange cannot be bound to: it routes by queue name") };
    // Validation let through exactly one destination: an exchange when the field is set.
    if (c.destinationExchange != null) {
      const name = c.destinationExchange;
      const ex = vh.exchanges.get(name);
      if (ex === undefined) return { error: notFound(`no exchange "${name}"`) };
      if (ex.name === "") return { error: preconditionFailed("the default exchange cannot be a binding's destination: it takes only what is published to it") };
      return { vh, source, destination: { kind: "exchange", name, bound: ex.boundFrom } };
    }
    const qName = c.queue ?? "";
    const q = vh.queues.get(qName);
    if (q === undefined) return { error: notFound(`no queue "${qName}"`) };
    const locked = this.exclusiveError(q, c.sessionId ?? "");
    if (locked !== null) return { error: locked };
    return { vh, source, destination: { kind: "queue", name: qName, bound: q.bindings } };
  }

  private publish(c: raftmq.v1.Publish.$Properties): CommandResult {
    const s = this.s;
    const producerId = c.producerId ?? "";
    const sequence = int64(c.sequence);
    if (producerId !== "") {
      const seen = s.dedup.lookup(producerId, sequence);
      if (seen.kind === "duplicate") return { ...seen.result, duplicate: true };
      if (seen.kind === "tooOld") {
        return fail(
          outcomeUnknown(
            `outcome unknown to the broker: sequence ${sequence} of producer "${producerId}" is older than its dedup window (sequences up to ${seen.evictedUpTo} are forgotten); it was not enqueued now, and whether an earlier attempt enqueued it cannot be known`,
          ),
        );
      }
      if ((c.retry ?? false) && s.machineVersion >= PRODUCER_RETRY_VERSION && seen.kind !== "new") {
        const why =
          seen.kind === "unseen"
            ? `the broker has no record of producer "${producerId}" (its state expired after ${s.settings.producerIdleMs} ms without a publish, was evicted past ${s.settings.maxProducers} producers, or it never published)`
            : `producer "${producerId}" has no record of sequences below ${seen.lowest} since its state was last forgotten`;
        return fail(
          outcomeUnknown(`outcome unknown to the broker: retry of sequence ${sequence}: ${why}; it was not enqueued now, and whether an earlier attempt enqueued it cannot be known`),
        );
      }
    }
    const vh = this.vhostNamed(c.vhost);
    if (vh === undefined) return fail(noVhost(c.vhost));
    const exName = c.exchange ?? "";
    const ex = vh.exchanges.get(exName);
    if (ex === undefined) return fail(notFound(`no exchange "${exName}"`));
    if (ex.internal) return fail(preconditionFailed(`exchange "${exName}" is internal: clients cannot publish to it`));
    const bytes = c.body ?? emptyBody;
    const routingKey = this.strings.intern(c.routingKey ?? "");
    const head: MessageHead = c.properties == null ? this.heads.head(ex.name, routingKey) : { exchange: ex.name, routingKey, properties: c.properties };
    const bodyKey = s.nextBodyKey++;
    const targets = this.route(vh, ex, head);
    const routedQueues: string[] = [];
    let rejectedBy: string | undefined;
    for (const q of targets) {
      if (this.enqueue(q, head, bodyKey, bytes.byteLength)) routedQueues.push(q.name);
      else rejectedBy ??= q.name;
    }
    // An empty body is never stored: reading one needs no key.
    if (routedQueues.length > 0 && bytes.byteLength > 0) this.newBodies.push({ key: bodyKey, bytes });
    // The publisher learns of it from this result (a NO_ROUTE nack): there is no return effect.
    const returned = targets.length === 0 && (c.mandatory ?? false);
    const result: PublishResult = { ok: true, kind: "publish", routedQueues, duplicate: false, returned };
    if (rejectedBy !== undefined) result.rejectedBy = rejectedBy;
    if (producerId !== "") s.dedup.record(producerId, sequence, result, s.now);
    return result;
  }

  private subscribe(c: raftmq.v1.Subscribe.$Properties): CommandResult {
    const s = this.s;
    const id = c.consumerId ?? "";
    const sessionId = c.sessionId ?? "";
    const qName = c.queue ?? "";
    if (s.consumers.has(id)) return fail(preconditionFailed(`consumer id "${id}" is already in use`));
    const vh = this.vhostNamed(c.vhost);
    if (vh === undefined) return fail(noVhost(c.vhost));
    const q = vh.queues.get(qName);
    if (q === undefined) return fail(notFound(`no queue "${qName}"`));
    const locked = this.exclusiveError(q, sessionId);
    if (locked !== null) return fail(locked);
    if (q.consumers.length >= this.limits.maxConsumersPerQueue) {
      return fail(resourceExhausted(`queue "${qName}" has its limit of ${this.limits.maxConsumersPerQueue} consumers`));
    }
    if (q.consumers.some((x) => x.exclusive)) return fail(preconditionFailed(`queue "${qName}" has an exclusive consumer`));
    if (c.exclusive && q.consumers.length > 0) {
      return fail(preconditionFailed(`cannot consume exclusively from queue "${qName}": it already has ${q.consumers.length} consumers`));
    }
    const consumer = new Consumer(id, sessionId, q, c.prefetch ?? 0, c.noAck ?? false, c.exclusive ?? false, c.consumerTag ?? "");
    q.consumers.push(consumer);
    q.hadConsumer = true;
    q.lastUsedAt = s.now;
    s.consumers.set(id, consumer);
    this.session(sessionId).consumers.add(id);
    this.markDirty(q);
    return { ok: true, kind: "subscribe", consumerId: id };
  }

  private cancel(id: string): CommandResult {
    const c = this.s.consumers.get(id);
    if (c === undefined) return fail(notFound(`no consumer "${id}"`));
    if (!c.cancelled) {
      const q = c.queue;
      q.removeConsumer(c);
      c.cancelled = true;
      q.lastUsedAt = this.s.now;
      // It keeps what it holds until it settles it (basic.cancel does not requeue).
      if (c.inflight.size === 0) this.forgetConsumer(c);
      this.markDirty(q);
      this.maybeAutoDeleteQueue(q);
    }
    return { ok: true, kind: "cancel" };
  }

  private get(c: raftmq.v1.Get.$Properties): CommandResult {
    const s = this.s;
    const qName = c.queue ?? "";
    const sessionId = c.sessionId ?? "";
    const vh = this.vhostNamed(c.vhost);
    if (vh === undefined) return fail(noVhost(c.vhost));
    const q = vh.queues.get(qName);
    if (q === undefined) return fail(notFound(`no queue "${qName}"`));
    const locked = this.exclusiveError(q, sessionId);
    if (locked !== null) return fail(locked);
    q.lastUsedAt = s.now;
    const session = c.noAck ? undefined : this.session(sessionId);
    if (session !== undefined && session.gets.size >= this.limits.maxUnackedPerConsumer) {
      return fail(resourceExhausted(`session "${sessionId}" holds ${session.gets.size} unsettled gets, its limit`));
    }
    this.expireHead(q);
    const m = q.takeHead();
    if (m === undefined) {
      if (session !== undefined) this.maybeForgetSession(session);
      return { ok: true, kind: "get", empty: true };
    }
    m.deliveryCount++;
    let deliveryTag = 0;
    if (session !== undefined) {
      deliveryTag = s.nextGetTag++;
      session.gets.set(deliveryTag, { queue: q, message: m });
      q.unacked++;
      q.unackedBytes += m.size;
    }
    const result: GetResult = {
      ok: true,
      kind: "get",
      empty: false,
      message: m.message,
      deliveryTag,
      redelivered: m.redelivered,
      deliveryCount: m.deliveryCount,
      messageCount: q.readyCount,
    };
    return result;
  }

  private settle(
    kind: "ack" | "nack" | "reject",
    consumerId: string,
    sessionId: string,
    tag: number,
    multiple: boolean,
    action: SettleAction,
  ): CommandResult {
    if (consumerId !== "") {
      const c = this.s.consumers.get(consumerId);
      if (c === undefined) return fail(notFound(`no consumer "${consumerId}"`));
      const tags = pickTags(c.inflight, tag, multiple);
      if (tags === null) return fail(unknownDeliveryTag(tag, consumerId));
      this.settleHeld(c, tags, action);
      return { ok: true, kind, settled: tags.length };
    }
    const session = this.s.sessions.get(sessionId);
    const tags = session === undefined ? null : pickTags(session.gets, tag, multiple);
    if (session === undefined || tags === null) return fail(preconditionFailed(`unknown delivery tag ${tag} on session ${sessionId}`));
    for (const t of tags) {
      const d = session.gets.get(t);
      invariant(d !== undefined, "picked tag is held by the session");
      session.gets.delete(t);
      this.settleOne(d.queue, d.message, action);
    }
    this.maybeForgetSession(session);
    return { ok: true, kind, settled: tags.length };
  }

  /**
   * Each tag as a single ack of it would settle it, in order; the tags the consumer does not hold
   * (a tag named twice is held the first time only) are listed.
   */
  private ackTags(consumerId: string, tags: number[]): CommandResult {
    const c = this.s.consumers.get(consumerId);
    if (c === undefined) return fail(notFound(`no consumer "${consumerId}"`));
    const held = new Set<number>();
    const unknown: number[] = [];
    for (const t of tags) {
      if (c.inflight.has(t) && !held.has(t)) held.add(t);
      else unknown.push(t);
    }
    if (held.size > 0) this.settleHeld(c, [...held], "ack");
    return { ok: true, kind: "ackTags", settled: held.size, unknown };
  }

  /** Settles deliveries the consumer holds, then dispatches, and forgets a cancelled consumer that holds nothing more. */
  private settleHeld(c: Consumer, tags: readonly number[], action: SettleAction): void {
    for (const t of tags) {
      const m = c.inflight.get(t);
      invariant(m !== undefined, "a settled tag is in flight");
      c.inflight.delete(t);
      this.settleOne(c.queue, m, action);
    }
    this.markDirty(c.queue);
    if (c.cancelled && c.inflight.size === 0) this.forgetConsumer(c);
  }

  private settleOne(q: Queue, m: QueuedMessage, action: SettleAction): void {
    if (q.deleted) return;
    q.unacked--;
    q.unackedBytes -= m.size;
    invariant(q.unacked >= 0 && q.unackedBytes >= 0, `queue "${q.name}" unacked counters stay non-negative`);
    switch (action) {
      case "ack":
        return;
      case "reject":
        this.deadLetter(q, m, "rejected");
        return;
      case "requeue":
        this.returnMessage(q, m);
        return;
      default:
        assertNever(action);
    }
  }

  private returnMessage(q: Queue, m: QueuedMessage): void {
    const limit = q.args.deliveryLimit;
    // RabbitMQ's rule: a message returned more times than the limit is dead-lettered.
    if (limit !== null && m.deliveryCount > limit) {
      this.deadLetter(q, m, "delivery_limit");
      return;
    }
    m.redelivered = true;
    q.putBack(m);
    this.markDirty(q);
  }

  /** Returns what the consumer held to its queue and removes it; answers how many went back. */
  private downConsumer(c: Consumer): number {
    const q = c.queue;
    if (!c.cancelled) {
      q.removeConsumer(c);
      c.cancelled = true;
      q.lastUsedAt = this.s.now;
    }
    const held = [...c.inflight.values()];
    c.inflight.clear();
    for (const m of held) this.settleOne(q, m, "requeue");
    this.forgetConsumer(c);
    this.markDirty(q);
    this.maybeAutoDeleteQueue(q);
    return held.length;
  }

  private setClusterSettings(c: raftmq.v1.SetClusterSettings.$Properties): CommandResult {
    const s = this.s;
    const version = c.machineVersion ?? 0;
    if (version < s.machineVersion) {
      return fail(preconditionFailed(`state-machine version ${s.machineVersion} is in force and never goes back; set_cluster_settings named ${version}`));
    }
    const settings = Object.freeze(settingsFromProto(c.settings, s.settings));
    s.settings = settings;
    // From here on every node answers retries from `lowest`: start it from the state all share.
    if (s.machineVersion < PRODUCER_RETRY_VERSION && version >= PRODUCER_RETRY_VERSION) s.dedup.resetLowest();
    s.machineVersion = version;
    s.dedup.configure(settings.dedupWindow, settings.maxProducers, settings.producerIdleMs);
    // Raised dispatch limits take effect now, not on each queue's next publish or ack.
    for (const v of s.vhosts.values()) for (const q of v.queues.values()) this.markDirty(q);
    return { ok: true, kind: "setClusterSettings", machineVersion: version, settings };
  }

  private addVhost(name: string): CommandResult {
    const s = this.s;
    if (s.vhosts.has(name)) return fail(preconditionFailed(`vhost "${name}" already exists`));
    if (s.vhosts.size >= accessLimits.maxVhosts) {
      return fail(resourceExhausted(`cannot add vhost "${name}": the broker holds its limit of ${accessLimits.maxVhosts} vhosts`));
    }
    if (this.exchangeCount() + builtinExchanges.length > this.limits.maxExchanges) {
      return fail(
        resourceExhausted(
          `cannot add vhost "${name}": its ${builtinExchanges.length} predeclared exchanges would exceed the broker's limit of ${this.limits.maxExchanges} exchanges`,
        ),
      );
    }
    s.vhosts.set(name, Vhost.withBuiltins(name));
    s.accessVersion++;
    return { ok: true, kind: "addVhost" };
  }

  /** Deletes the vhost's queues as DeleteQueue does (consumers cancelled, with effects), then the rest. */
  private deleteVhost(name: string): CommandResult {
    const s = this.s;
    if (name === DEFAULT_VHOST) return fail(preconditionFailed(`vhost "${DEFAULT_VHOST}" cannot be deleted: commands that name no vhost use it`));
    const vh = s.vhosts.get(name);
    if (vh === undefined) return fail(noVhost(name));
    const deletedQueues: string[] = [];
    for (const q of [...vh.queues.values()]) {
      this.removeQueue(q);
      deletedQueues.push(q.name);
    }
    for (const ex of [...vh.exchanges.values()]) if (vh.exchanges.get(ex.name) === ex) this.removeExchange(vh, ex);
    invariant(vh.queues.size === 0 && vh.exchanges.size === 0, `vhost "${name}" is empty when deleted`);
    s.vhosts.delete(name);
    forgetVhostPermissions(s, name);
    s.accessVersion++;
    return { ok: true, kind: "deleteVhost", deletedQueues };
  }

  /** Every session known now belongs to an earlier leader, whose streams ended with its leadership. */
  private leaderTookOffice(): CommandResult {
    const ids = [...this.s.sessions.keys()].sort();
    for (const id of ids) this.sessionDown(id);
    return { ok: true, kind: "leaderTookOffice", sessionsDown: ids.length };
  }

  private sessionDown(id: string): CommandResult {
    const session = this.s.sessions.get(id);
    if (session === undefined) return { ok: true, kind: "sessionDown", consumers: [], deletedQueues: [] };
    const consumers = [...session.consumers];
    for (const cid of consumers) {
      const c = this.s.consumers.get(cid);
      if (c !== undefined) this.downConsumer(c);
    }
    for (const [tag, d] of [...session.gets]) {
      session.gets.delete(tag);
      this.settleOne(d.queue, d.message, "requeue");
    }
    const deletedQueues: string[] = [];
    for (const q of [...session.exclusiveQueues]) {
      if (q.deleted) continue;
      this.removeQueue(q);
      deletedQueues.push(q.name);
    }
    this.s.sessions.delete(id);
    return { ok: true, kind: "sessionDown", consumers, deletedQueues };
  }

  // ---- routing and queue mechanics ----

  /**
   * Queues of vh the message reaches from ex, in declaration order, each once however many paths
   * lead there. As RabbitMQ's rabbit_exchange:route: every exchange reached routes the message by
   * its own bindings to queues and to further exchanges; one whose bindings match nothing hands it
   * to its alternate exchange; an exchange already visited is not visited again, so cycles end.
   * The set of exchanges visited, and so the result, does not depend on the order of the walk.
   */
  private route(vh: Vhost, ex: Exchange, m: MessageHead): Queue[] {
    const names = new Set<string>();
    const visited = new Set<string>([ex.name]);
    const pending: Exchange[] = [ex];
    const next = new Set<string>();
    for (let at = pending.pop(); at !== undefined; at = pending.pop()) {
      let matched: boolean;
      if (at.name === "") {
        matched = vh.queues.has(m.routingKey);
        if (matched) names.add(m.routingKey);
      } else {
        matched = at.route(m.routingKey, m.properties.headers, names, next);
      }
      if (!matched && at.alternateExchange !== "") next.add(at.alternateExchange);
      for (const name of next) {
        if (visited.has(name)) continue;
        visited.add(name);
        const to = vh.exchanges.get(name);
        if (to !== undefined) pending.push(to);
      }
      next.clear();
    }
    const out: Queue[] = [];
    for (const n of names) {
      const q = vh.queues.get(n);
      if (q !== undefined) out.push(q);
    }
    if (out.length > 1) out.sort((a, b) => a.seq - b.seq);
    return out;
  }

  /** Enqueues one copy; false when a reject-publish limit refuses it. */
  private enqueue(q: Queue, head: MessageHead, bodyKey: number, size: number): boolean {
    const s = this.s;
    const a = q.args;
    if (a.overflow === "reject-publish") {
      if ((a.maxLength !== null && q.readyCount >= a.maxLength) || (a.maxLengthBytes !== null && q.readyBytes + size > a.maxLengthBytes)) {
        return false;
      }
    }
    let ttl = a.messageTtlMs;
    const perMessage = parseExpiration(head.properties.expiration);
    if (perMessage !== null && !Number.isNaN(perMessage)) ttl = ttl === null ? perMessage : Math.min(ttl, perMessage);
    // Stored as the first log time at which the message counts as expired; 0 means never.
    const expiresAt = ttl === null ? 0 : s.now + ttl + 1;
    q.pushTail(s.nextMessageId++, head, bodyKey, size, expiresAt);
    if (a.overflow === "drop-head") {
      while (q.readyCount > 0 && ((a.maxLength !== null && q.readyCount > a.maxLength) || (a.maxLengthBytes !== null && q.readyBytes > a.maxLengthBytes))) {
        const dropped = q.takeHead();
        invariant(dropped !== undefined, "a queue over its length has a head");
        this.deadLetter(q, dropped, "maxlen");
      }
    }
    this.markDirty(q);
    return true;
  }

  private deadLetter(q: Queue, m: QueuedMessage, reason: DeadLetterReason): void {
    const dlx = q.args.deadLetterExchange;
    if (dlx === null) return;
    const ex = q.vhost.exchanges.get(dlx);
    if (ex === undefined) return;
    const message = deadLetteredMessage(m.message, q.name, reason, this.s.now, dlx, q.args.deadLetterRoutingKey);
    for (const target of this.route(q.vhost, ex, message)) {
      if (isDeadLetterCycle(message.properties.deaths, target.name)) continue;
      this.enqueue(target, message, message.bodyKey, message.bodySize);
    }
  }

  private expireHead(q: Queue): void {
    const now = this.s.now;
    for (let at = q.headExpiresAt(); at !== undefined && at !== 0 && now >= at; at = q.headExpiresAt()) {
      const h = q.takeHead();
      invariant(h !== undefined, "a queue with a head expiry has a head");
      this.deadLetter(q, h, "expired");
    }
  }

  private markDirty(q: Queue): void {
    if (q.dirty || q.deleted) return;
    q.dirty = true;
    this.dirty.push(q);
  }

  /**
   * Hands ready messages to consumers with credit, round-robin, for every queue that changed and
   * every queue an earlier apply left with a backlog.
   */
  private flushDirty(): void {
    this.resumeBacklog();
    // Most commands (acks of a queue without backlog aside) leave nothing to dispatch.
    if (this.dirty.length === 0) return;
    const round = new DispatchRound(this.limits.maxUnackedPerConsumer, this.limits.maxNoAckDeliveriesPerApply);
    for (let i = 0; i < this.dirty.length; i++) {
      const q = this.dirty[i] as Queue;
      q.dirty = false;
      if (q.deleted) continue;
      this.expireHead(q);
      while (q.readyCount > 0) {
        const c = pickConsumer(q, round);
        if (c === undefined) break;
        const m = q.takeHead();
        invariant(m !== undefined, "a queue with ready messages has a head");
        this.deliver(c, m);
        round.took(c);
        this.expireHead(q);
      }
      if (q.readyCount > 0) this.pauseSpent(q, round);
    }
    this.dirty.length = 0;
  }

  private resumeBacklog(): void {
    const backlog = this.s.backlog;
    if (backlog.size === 0) return;
    // Declaration order: a restored node must visit them in the order a live one does.
    const queues = [...backlog].sort((a, b) => a.seq - b.seq);
    backlog.clear();
    for (const q of queues) this.markDirty(q);
  }

  /** A queue left with ready messages because no_ack consumers had their share goes on next apply. */
  private pauseSpent(q: Queue, round: DispatchRound): void {
    if (this.s.backlog.has(q)) return;
    const candidates = q.args.singleActiveConsumer ? q.consumers.slice(0, 1) : q.consumers;
    const spent = candidates.filter((c) => round.spent(c));
    if (spent.length === 0) return;
    this.s.backlog.add(q);
    for (const c of spent) this.effects.push({ kind: "deliveryPaused", consumer: c.ref, queue: q.name });
  }

  private deliver(c: Consumer, m: QueuedMessage): void {
    m.deliveryCount++;
    const tag = c.nextTag++;
    this.effects.push({
      kind: "deliver",
      consumer: c.ref,
      deliveryTag: tag,
      queue: c.queue.name,
      message: m.message,
      redelivered: m.redelivered,
      deliveryCount: m.deliveryCount,
    });
    if (!c.noAck) {
      c.inflight.set(tag, m);
      c.queue.unacked++;
      c.queue.unackedBytes += m.size;
    }
  }

  /** Expires messages at queue heads and unused queues (x-expires), and idle producers. */
  private sweep(): void {
    const s = this.s;
    s.lastSweepAt = s.now;
    const queues: Queue[] = [];
    for (const v of s.vhosts.values()) for (const q of v.queues.values()) queues.push(q);
    for (const q of queues) {
      if (q.deleted) continue;
      const expiresAt = q.headExpiresAt();
      if (expiresAt !== undefined && expiresAt !== 0 && s.now >= expiresAt) this.markDirty(q);
      const ttl = q.args.expiresMs;
      if (ttl !== null && q.consumers.length === 0 && s.now - q.lastUsedAt > ttl) this.removeQueue(q);
    }
    s.dedup.expire(s.now);
  }

  /** Deletes a queue: cancels its consumers, drops its messages and bindings. Answers the ready count. */
  private removeQueue(q: Queue): number {
    const s = this.s;
    const count = q.readyCount;
    q.deleted = true;
    s.backlog.delete(q);
    for (const c of [...q.consumers]) {
      this.effects.push({ kind: "consumerCancelled", consumer: c.ref, reason: "queueDeleted", queue: q.name });
      c.cancelled = true;
      this.forgetConsumer(c);
    }
    q.consumers.length = 0;
    // Cancelled consumers still holding messages of this queue have nothing left to settle.
    for (const c of [...s.consumers.values()]) {
      if (c.queue === q) this.forgetConsumer(c);
    }
    for (const source of this.unbindAll(q.vhost, q.bindings)) this.maybeAutoDeleteExchange(q.vhost, source);
    q.takeAllReady();
    // basic.get deliveries of a deleted queue have nothing left to settle either.
    for (const session of [...s.sessions.values()]) {
      for (const [tag, d] of [...session.gets]) if (d.queue === q) session.gets.delete(tag);
      this.maybeForgetSession(session);
    }
    q.vhost.queues.delete(q.name);
    if (q.exclusive) {
      const owner = s.sessions.get(q.ownerSessionId);
      if (owner !== undefined) {
        owner.exclusiveQueues.delete(q);
        this.maybeForgetSession(owner);
      }
    }
    return count;
  }

  private maybeAutoDeleteQueue(q: Queue): void {
    if (q.autoDelete && q.hadConsumer && q.consumers.length === 0 && !q.deleted) this.removeQueue(q);
  }

  /** RabbitMQ's rule: only bindings it is the source of count, not those to it. */
  private maybeAutoDeleteExchange(vh: Vhost, ex: Exchange): void {
    // A cascade of deletions may name an exchange that already went.
    if (vh.exchanges.get(ex.name) !== ex) return;
    if (ex.autoDelete && ex.hadBinding && ex.bindings.size === 0 && !ex.builtin) this.removeExchange(vh, ex);
  }

  private forgetConsumer(c: Consumer): void {
    this.s.consumers.delete(c.id);
    const session = this.s.sessions.get(c.sessionId);
    if (session !== undefined) {
      session.consumers.delete(c.id);
      this.maybeForgetSession(session);
    }
  }

  private session(id: string): Session {
    let s = this.s.sessions.get(id);
    if (s === undefined) {
      s = { id, consumers: new Set(), gets: new Map(), exclusiveQueues: new Set() };
      this.s.sessions.set(id, s);
    }
    return s;
  }

  private maybeForgetSession(s: Session): void {
    if (s.consumers.size === 0 && s.gets.size === 0 && s.exclusiveQueues.size === 0) this.s.sessions.delete(s.id);
  }

  private exclusiveError(q: Queue, sessionId: string): BrokerError | null {
    if (q.exclusive && q.ownerSessionId !== sessionId) return preconditionFailed(`queue "${q.name}" is exclusive to another session`);
    return null;
  }
}

function fail(error: BrokerError): CommandResult {
  return { ok: false, error };
}

function noVhost(field: string | null | undefined): BrokerError {
  return notFound(`no vhost "${field ?? ""}"`);
}

/** What consumers may still take in one apply: prefetch credit, and a share for no_ack consumers. */
class DispatchRound {
  /** Created by the first no_ack delivery: most rounds have none. */
  private noAckTaken: Map<Consumer, number> | null = null;

  constructor(
    private readonly maxUnacked: number,
    private readonly noAckShare: number,
  ) {}

  mayTake(c: Consumer): boolean {
    return c.noAck ? (this.noAckTaken?.get(c) ?? 0) < this.noAckShare : c.hasCredit(this.maxUnacked);
  }

  took(c: Consumer): void {
    if (!c.noAck) return;
    this.noAckTaken ??= new Map();
    this.noAckTaken.set(c, (this.noAckTaken.get(c) ?? 0) + 1);
  }

  /** A no_ack consumer that had its share of this apply. */
  spent(c: Consumer): boolean {
    return c.noAck && (this.noAckTaken?.get(c) ?? 0) >= this.noAckShare;
  }
}

function pickConsumer(q: Queue, round: DispatchRound): Consumer | undefined {
  const n = q.consumers.length;
  if (n === 0) return undefined;
  if (q.args.singleActiveConsumer) {
    const active = q.consumers[0] as Consumer;
    return round.mayTake(active) ? active : undefined;
  }
  for (let k = 0; k < n; k++) {
    const idx = (q.nextConsumer + k) % n;
    const c = q.consumers[idx] as Consumer;
    if (round.mayTake(c)) {
      q.nextConsumer = (idx + 1) % n;
      return c;
    }
  }
  return undefined;
}

/** The tags a settle covers, ascending; null when the named tag is not held. */
function pickTags<T>(held: Map<number, T>, tag: number, multiple: boolean): number[] | null {
  if (multiple && tag === 0) return [...held.keys()];
  if (!held.has(tag)) return null;
  if (!multiple) return [tag];
  const out: number[] = [];
  for (const t of held.keys()) {
    if (t > tag) break;
    out.push(t);
  }
  return out;
}


function inequivalence(q: Queue, c: raftmq.v1.DeclareQueue.$Properties, args: QueueArgs): string | null {
  if (q.durable !== (c.durable ?? false)) return "durable";
  if (q.exclusive !== (c.exclusive ?? false)) return "exclusive";
  if (q.autoDelete !== (c.autoDelete ?? false)) return "auto_delete";
  const names: Record<keyof QueueArgs, string> = {
    messageTtlMs: "x-message-ttl",
    expiresMs: "x-expires",
    maxLength: "x-max-length",
    maxLengthBytes: "x-max-length-bytes",
    overflow: "x-overflow",
    deadLetterExchange: "x-dead-letter-exchange",
    deadLetterRoutingKey: "x-dead-letter-routing-key",
    deliveryLimit: "x-delivery-limit",
    singleActiveConsumer: "x-single-active-consumer",
    queueType: "x-queue-type",
  };
  for (const key of Object.keys(names) as (keyof QueueArgs)[]) {
    // An unnamed type and "quorum" are the same queue type here.
    if (key === "queueType") continue;
    if (q.args[key] !== args[key]) return names[key];
  }
  return null;
}

function queueInfoOf(q: Queue): QueueInfo {
  return {
    name: q.name,
    durable: q.durable,
    exclusive: q.exclusive,
    ownerSessionId: q.ownerSessionId,
    autoDelete: q.autoDelete,
    arguments: { ...q.args },
    messagesReady: q.readyCount,
    messagesUnacknowledged: q.unacked,
    consumers: q.consumers.length,
    readyBytes: q.readyBytes,
    unackedBytes: q.unackedBytes,
  };
}

