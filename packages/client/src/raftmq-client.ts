// The SDK's entry: `connect` finds the cluster, and the client offers the broker's operations as
// typed methods, publishers, consumers, the cluster's admin calls and users, vhosts and permissions.
import { randomUUID } from "node:crypto";
import { raftmq } from "@raftmq/proto";
import { accessServiceDefinition, brokerServiceDefinition, clusterServiceDefinition } from "@raftmq/proto/grpc";
import { type Permissions, permissionsFromWire, type UserInfo, userInfoFromWire, type WhoAmI, whoAmIFromWire } from "./access-types.ts";
import { DedupWindowPassedError, fromGrpcError, isAccessError, nackError, PermissionDeniedError, RaftmqError, UnavailableError } from "./client-errors.ts";
import { type ConnectOptions, checkAddresses, resolveClientOptions } from "./client-options.ts";
import { ClusterConnection } from "./cluster-connection.ts";
import { ConnectionSecurity } from "./connection-security.ts";
import { type ConsumeOptions, Consumer, type DeliveryHandler, type ExclusiveQueueOptions, type HandlerRun, runHandler } from "./consumer.ts";
import {
  type BindingDestination,
  type BindingInfo,
  type Body,
  bindingDestinationToWire,
  bindingInfoFromWire,
  type DeclareExchangeOptions,
  type DeclareQueueOptions,
  type ExchangeInfo,
  type ExchangeType,
  exchangeInfoFromWire,
  exchangeTypeToWire,
  type Headers,
  headersToWire,
  type MessageProperties,
  outboundMessage,
  propertiesFromWire,
  type QueueInfo,
  queueArgumentsToWire,
  queueInfoFromWire,
} from "./message-types.ts";
import { type PublishConfirm, type PublisherIdentity, type PublishOptions, Publisher, type PublisherOptions } from "./publisher.ts";

const v1 = raftmq.v1;
const broker = brokerServiceDefinition;
const cluster = clusterServiceDefinition;
const access = accessServiceDefinition;

export interface MemberInfo {
  id: number;
  peerAddress: string;
  clientAddress: string;
  role: "voter" | "learner";
  leader: boolean;
  /** As the leader sees it; zero on other nodes. */
  matchIndex: number;
  lag: number;
  reachable: boolean;
}

export interface NodeStatus {
  /** The address that answered. */
  address: string;
  nodeId: number;
  role: string;
  term: number;
  leaderId: number;
  leaderClientAddress: string;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  snapshotIndex: number;
  members: MemberInfo[];
  ready: boolean;
  version: string;
}

/** Cluster settings by name: the fields of ClusterSettings (types.proto), in camelCase. */
export type ClusterSettingValues = Record<string, number>;

/** The names Cluster.SetSettings takes; a name outside them would be dropped unseen on the wire. */
export const CLUSTER_SETTING_NAMES: readonly string[] = Object.freeze(
  // The generated class declares each field on its prototype as null; methods are functions.
  Object.entries(v1.ClusterSettings.prototype as unknown as Record<string, unknown>)
    .filter(([, v]) => v === null)
    .map(([k]) => k),
);

export interface ClusterSettingsInForce {
  /** The node that answered, and so whose applied state this is. */
  address: string;
  nodeId: number;
  /** The state-machine version in force. */
  machineVersion: number;
  /** The highest version that node's code applies. */
  maxMachineVersion: number;
  settings: ClusterSettingValues;
}

function settingValuesFromWire(s: raftmq.v1.ClusterSettings.$Properties | null | undefined): ClusterSettingValues {
  const out: ClusterSettingValues = {};
  if (s == null) return out;
  for (const name of CLUSTER_SETTING_NAMES) {
    const v = (s as Record<string, unknown>)[name];
    if (typeof v === "number") out[name] = v;
  }
  return out;
}

export interface GetResult {
  body: Buffer;
  properties: MessageProperties;
  exchange: string;
  routingKey: string;
  redelivered: boolean;
  deliveryCount: number;
  /** Ready messages left in the queue. */
  messageCount: number;
}

export interface HandledConsumer extends HandlerRun {
  consumer: Consumer;
}

function membersFromWire(members: readonly raftmq.v1.Member.$Properties[] | null | undefined): MemberInfo[] {
  return (members ?? []).map((m) => ({
    id: Number(m.id ?? 0),
    peerAddress: m.peerAddress ?? "",
    clientAddress: m.clientAddress ?? "",
    role: m.role === v1.MemberRole.MEMBER_ROLE_LEARNER ? "learner" : "voter",
    leader: m.leader ?? false,
    matchIndex: Number(m.matchIndex ?? 0),
    lag: Number(m.lag ?? 0),
    reachable: m.reachable ?? false,
  }));
}

function statusFromWire(address: string, s: raftmq.v1.StatusResponse.$Properties): NodeStatus {
  return {
    address,
    nodeId: Number(s.nodeId ?? 0),
    role: s.role ?? "",
    term: Number(s.term ?? 0),
    leaderId: Number(s.leaderId ?? 0),
    leaderClientAddress: s.leaderClientAddress ?? "",
    commitIndex: Number(s.commitIndex ?? 0),
    appliedIndex: Number(s.appliedIndex ?? 0),
    lastIndex: Number(s.lastIndex ?? 0),
    snapshotIndex: Number(s.snapshotIndex ?? 0),
    members: membersFromWire(s.members),
    ready: s.ready ?? false,
    version: s.version ?? "",
  };
}

export class RaftmqClient {
  /** Producer id of `publish`; createPublisher() gives each publisher its own. */
  readonly producerId = randomUUID();
  private nextSequence = 1;
  private readonly publishers = new Set<Publisher>();
  private readonly consumers = new Set<Consumer>();

  constructor(private readonly connection: ClusterConnection) {}

  /** The node calls go to now (the leader when known). */
  get address(): string {
    return this.connection.address;
  }

  /** Every client address known: the seeds and the members discovered. */
  get addresses(): readonly string[] {
    return this.connection.addresses;
  }

  /** The virtual host of this client's broker calls. */
  get vhost(): string {
    return this.connection.security.vhost;
  }

  async declareExchange(name: string, type: ExchangeType, options: DeclareExchangeOptions = {}): Promise<void> {
    await this.connection.unary(broker.DeclareExchange, {
      name,
      type: exchangeTypeToWire(type),
      durable: options.durable ?? true,
      autoDelete: options.autoDelete ?? false,
      internal: options.internal ?? false,
      alternateExchange: options.alternateExchange ?? "",
      passive: options.passive ?? false,
    });
  }

  async deleteExchange(name: string, options: { ifUnused?: boolean } = {}): Promise<void> {
    await this.connection.unary(broker.DeleteExchange, { name, ifUnused: options.ifUnused ?? false });
  }

  async declareQueue(name: string, options: DeclareQueueOptions = {}): Promise<{ name: string; messageCount: number; consumerCount: number }> {
    const r = await this.connection.unary(broker.DeclareQueue, {
      name,
      durable: options.durable ?? true,
      autoDelete: options.autoDelete ?? false,
      arguments: queueArgumentsToWire(options.arguments),
      passive: options.passive ?? false,
    });
    return { name: r.name ?? name, messageCount: Number(r.messageCount ?? 0), consumerCount: r.consumerCount ?? 0 };
  }

  async deleteQueue(name: string, options: { ifUnused?: boolean; ifEmpty?: boolean } = {}): Promise<{ messageCount: number }> {
    const r = await this.connection.unary(broker.DeleteQueue, { name, ifUnused: options.ifUnused ?? false, ifEmpty: options.ifEmpty ?? false });
    return { messageCount: Number(r.messageCount) };
  }

  async purgeQueue(name: string): Promise<{ messageCount: number }> {
    const r = await this.connection.unary(broker.PurgeQueue, { name });
    return { messageCount: Number(r.messageCount) };
  }

  /**
   * Binds `destination` to the exchange `exchange`: a queue by name, or `{ exchange: "name" }` for
   * another exchange (RabbitMQ's exchange.bind; the cluster must apply state-machine version 6).
   */
  async bind(exchange: string, destination: BindingDestination, routingKey = "", args?: Headers): Promise<void> {
    await this.connection.unary(broker.Bind, { exchange, ...bindingDestinationToWire(destination), routingKey, arguments: headersToWire(args) });
  }

  /** Removes the binding bind made with the same destination, key and arguments. */
  async unbind(exchange: string, destination: BindingDestination, routingKey = "", args?: Headers): Promise<void> {
    await this.connection.unary(broker.Unbind, { exchange, ...bindingDestinationToWire(destination), routingKey, arguments: headersToWire(args) });
  }

  async queueInfo(name: string): Promise<QueueInfo> {
    const r = await this.connection.unary(broker.QueueInfo, { name });
    return queueInfoFromWire(r.queue);
  }

  async listQueues(): Promise<QueueInfo[]> {
    const r = await this.connection.unary(broker.ListQueues, v1.ListQueuesRequest.create());
    return (r.queues ?? []).map(queueInfoFromWire);
  }

  async listExchanges(): Promise<ExchangeInfo[]> {
    const r = await this.connection.unary(broker.ListExchanges, v1.ListExchangesRequest.create());
    return (r.exchanges ?? []).map(exchangeInfoFromWire);
  }

  /** Bindings of the vhost; a filter field keeps those of that source, queue or destination exchange. */
  async listBindings(filter: { exchange?: string; queue?: string; destinationExchange?: string } = {}): Promise<BindingInfo[]> {
    const r = await this.connection.unary(broker.ListBindings, { exchange: filter.exchange ?? "", queue: filter.queue ?? "", destinationExchange: filter.destinationExchange ?? "" });
    return (r.bindings ?? []).map(bindingInfoFromWire);
  }

  /** basic.get with automatic acknowledgement: null when the queue had no ready message. */
  async get(queue: string): Promise<GetResult | null> {
    const r = await this.connection.unary(broker.Get, { queue });
    const d = r.delivery;
    if (d == null) return null;
    return {
      body: d.body == null ? Buffer.alloc(0) : Buffer.from(d.body),
      properties: propertiesFromWire(d.properties),
      exchange: d.exchange ?? "",
      routingKey: d.routingKey ?? "",
      redelivered: d.redelivered ?? false,
      deliveryCount: Number(d.deliveryCount ?? 0),
      messageCount: Number(r.messageCount ?? 0),
    };
  }

  /**
   * Publishes one message and resolves on its confirm. A retry after an unknown outcome (node
   * down, deadline) repeats the same producer id and sequence, marked as a retry, so it never
   * enqueues twice: the broker answers the original confirm, or an outcome it cannot know.
   */
  async publish(exchange: string, routingKey: string, body: Body, options: PublishOptions = {}): Promise<PublishConfirm> {
    const sequence = this.nextSequence++;
    const message = outboundMessage(exchange, routingKey, body, options, this.producerId, sequence);
    const request = { messages: [message] };
    const r = await this.connection.retrying(
      broker.Publish.path,
      async (address) => {
        try {
          return await this.connection.unaryOnce(address, broker.Publish, request);
        } catch (raw) {
          const err = fromGrpcError(raw, address);
          // An attempt the node did not say it left unapplied may have enqueued the message.
          if (!(err instanceof RaftmqError && err.changedNothing)) message.retry = true;
          throw err;
        }
      },
      true,
    );
    const c = r.confirms?.[0];
    if (c === undefined) throw new UnavailableError("the broker answered a publish without a confirm", { address: this.connection.address });
    if (c.status === v1.ConfirmStatus.CONFIRM_STATUS_OUTCOME_UNKNOWN) throw new DedupWindowPassedError(c.reason ?? "", this.producerId, sequence, { address: this.connection.address });
    if (c.status !== v1.ConfirmStatus.CONFIRM_STATUS_ACK) throw nackError(c.reason ?? "");
    return { routedQueues: c.routedQueues ?? [], duplicate: c.duplicate ?? false, sequence };
  }

  /** A pipelined publisher on one stream, with a bounded window of unconfirmed messages. */
  createPublisher(options: Partial<PublisherOptions> & PublisherIdentity = {}): Publisher {
    const { producerId, firstSequence, ...limits } = options;
    const p = new Publisher(this.connection, limits, { producerId, firstSequence });
    this.publishers.add(p);
    return p;
  }

  /** Subscribes to `queue`; resolves once the broker took the subscription. Iterate it for deliveries. */
  async consume(queue: string, options: Partial<ConsumeOptions> = {}): Promise<Consumer> {
    const c = await Consumer.start(this.connection, queue, options);
    this.consumers.add(c);
    return c;
  }

  /**
   * Consumes from a queue of its own, for as long as the consumer lives: a server-named queue,
   * exclusive to the consumer's stream, bound as `bindings` say, deleted by the broker when the
   * stream ends (RabbitMQ's exclusive queue). `consumer.queue` names it. After a resubscription
   * (leader change, node down) it is a new queue; messages routed in between are not in it.
   */
  async consumeExclusiveQueue(options: ExclusiveQueueOptions & Partial<ConsumeOptions> = {}): Promise<Consumer> {
    const { bindings, queueArguments, ...consumeOptions } = options;
    const c = await Consumer.startExclusive(this.connection, { bindings, queueArguments }, consumeOptions);
    this.consumers.add(c);
    return c;
  }

  /**
   * The callback form of `consume`: `handler` runs for each delivery in turn; what it leaves
   * unsettled is acked when it returns and requeued when it throws.
   */
  async consumeWith(queue: string, handler: DeliveryHandler, options: Partial<ConsumeOptions> & { onHandlerError?: (err: unknown) => void } = {}): Promise<HandledConsumer> {
    const consumer = await this.consume(queue, options);
    return { consumer, ...runHandler(consumer, handler, options.onHandlerError) };
  }

  /** Cluster.Status of one node: the one calls go to, or `address`. */
  async status(address?: string): Promise<NodeStatus> {
    const at = address ?? this.connection.address;
    const r = await this.connection.unary(cluster.Status, v1.StatusRequest.create(), { address: at });
    return statusFromWire(at, r);
  }

  /** Cluster.Status of every known node; nodes that did not answer are listed with their error. */
  async clusterStatus(): Promise<{ nodes: NodeStatus[]; failures: { address: string; error: string }[] }> {
    const { answers, failures } = await this.connection.statuses();
    const nodes = answers.map((a) => statusFromWire(a.address, a.status)).sort((a, b) => a.nodeId - b.nodeId);
    return { nodes, failures: failures.sort((a, b) => a.address.localeCompare(b.address)) };
  }

  async addMember(id: number, peerAddress: string, clientAddress: string): Promise<MemberInfo[]> {
    const r = await this.connection.unary(cluster.AddMember, { id, peerAddress, clientAddress });
    return membersFromWire(r.members);
  }

  async removeMember(id: number): Promise<MemberInfo[]> {
    const r = await this.connection.unary(cluster.RemoveMember, { id });
    return membersFromWire(r.members);
  }

  /** Moves leadership to node `to` (0: the most caught-up voter); resolves with the new leader's id. */
  async transferLeadership(to = 0): Promise<number> {
    const r = await this.connection.unary(cluster.TransferLeadership, { to });
    await this.connection.refresh();
    return Number(r.leaderId);
  }

  /** The cluster settings in force, as the node at `address` (the leader, when known) has applied them. */
  async settings(address?: string): Promise<ClusterSettingsInForce> {
    const at = address ?? this.connection.address;
    const r = await this.connection.unary(cluster.Status, v1.StatusRequest.create(), { address: at });
    return { address: at, nodeId: Number(r.nodeId ?? 0), machineVersion: r.machineVersion ?? 0, maxMachineVersion: r.maxMachineVersion ?? 0, settings: settingValuesFromWire(r.settings) };
  }

  /**
   * Changes the named settings through the log (Cluster.SetSettings); the others keep their values.
   * `machineVersion` is the state-machine version the change is meant under: by default the one
   * in force; a higher one moves the cluster to it, once every member's code applies it.
   */
  async setSettings(settings: ClusterSettingValues, machineVersion?: number): Promise<{ machineVersion: number; settings: ClusterSettingValues }> {
    const unknown = Object.keys(settings).filter((name) => !CLUSTER_SETTING_NAMES.includes(name));
    if (unknown.length > 0) throw new RangeError(`no cluster setting ${unknown.join(", ")}; the settings are ${CLUSTER_SETTING_NAMES.join(", ")}`);
    const version = machineVersion ?? (await this.settings()).machineVersion;
    const r = await this.connection.unary(cluster.SetSettings, { machineVersion: version, settings });
    return { machineVersion: r.machineVersion ?? 0, settings: settingValuesFromWire(r.settings) };
  }

  async triggerSnapshot(): Promise<number> {
    const r = await this.connection.unary(cluster.TriggerSnapshot, v1.TriggerSnapshotRequest.create());
    return Number(r.index);
  }

  // Users, virtual hosts and permissions: every call but whoAmI needs a user tagged administrator.

  /** An empty password makes a user who authenticates only with a client certificate. */
  async addUser(name: string, password: string, tags: readonly string[] = []): Promise<void> {
    await this.connection.unary(access.AddUser, { name, password, tags: [...tags] });
  }

  async deleteUser(name: string): Promise<void> {
    await this.connection.unary(access.DeleteUser, { name });
  }

  /** An empty password turns password authentication off for the user. */
  async changePassword(name: string, password: string): Promise<void> {
    await this.connection.unary(access.ChangePassword, { name, password });
  }

  /** Replaces the user's tags. */
  async setUserTags(name: string, tags: readonly string[]): Promise<void> {
    await this.connection.unary(access.SetUserTags, { name, tags: [...tags] });
  }

  async listUsers(): Promise<UserInfo[]> {
    const r = await this.connection.unary(access.ListUsers, v1.ListUsersRequest.create());
    return (r.users ?? []).map(userInfoFromWire);
  }

  async addVhost(name: string): Promise<void> {
    await this.connection.unary(access.AddVhost, { name });
  }

  /** Deletes the vhost with its exchanges, queues, messages and permissions. */
  async deleteVhost(name: string): Promise<void> {
    await this.connection.unary(access.DeleteVhost, { name });
  }

  async listVhosts(): Promise<string[]> {
    const r = await this.connection.unary(access.ListVhosts, v1.ListVhostsRequest.create());
    return r.names ?? [];
  }

  /** Sets (replaces) what `user` may do in `vhost`. */
  async setPermissions(permissions: Permissions): Promise<void> {
    await this.connection.unary(access.SetPermissions, { permissions: { ...permissions } });
  }

  async clearPermissions(user: string, vhost: string): Promise<void> {
    await this.connection.unary(access.ClearPermissions, { user, vhost });
  }

  /** Every user's permissions in every vhost, or only those of `filter.user` and/or in `filter.vhost`. */
  async listPermissions(filter: { user?: string; vhost?: string } = {}): Promise<Permissions[]> {
    const r = await this.connection.unary(access.ListPermissions, { user: filter.user ?? "", vhost: filter.vhost ?? "" });
    return (r.permissions ?? []).map(permissionsFromWire);
  }

  /** The user this client is authenticated as, with its tags and how the server knew it. */
  async whoAmI(): Promise<WhoAmI> {
    return whoAmIFromWire(await this.connection.unary(access.WhoAmI, v1.WhoAmIRequest.create()));
  }

  /** Stops publishers and consumers (pending publishes fail with ClosedError) and closes every channel. */
  close(): void {
    for (const p of this.publishers) p.shutdown();
    for (const c of this.consumers) void c.close();
    this.publishers.clear();
    this.consumers.clear();
    this.connection.close();
  }
}

/**
 * Connects to a raftmq cluster through any of `addresses` (host:port of client APIs): asks them
 * for the cluster's status, learns every member and sends calls to the leader. Every call carries
 * `credentials` and `vhost`; with `tls` every channel is TLS. Fails with an UnavailableError
 * naming each address tried and what failed when no node answers, and with an
 * AuthenticationError when the nodes refused the caller's credentials. A user who may not read
 * the cluster's status (no monitoring tag) is connected all the same, without discovery.
 */
export async function connect(addresses: readonly string[], options: ConnectOptions = {}): Promise<RaftmqClient> {
  const { credentials, vhost, tls, ...limits } = options;
  const security = new ConnectionSecurity({ credentials, vhost, tls });
  const connection = new ClusterConnection(checkAddresses(addresses), resolveClientOptions(limits), security);
  const failures = await connection.refresh();
  // A user without the monitoring tag may not read the cluster's status, but may still use the
  // broker: calls then go to the given addresses, and a follower forwards them to the leader.
  const onlyStatusRefused = failures.length > 0 && failures.every((f) => f.cause instanceof PermissionDeniedError);
  if (failures.length > 0 && !onlyStatusRefused) {
    connection.close();
    const refused = failures.find((f) => isAccessError(f.cause));
    if (refused?.cause !== undefined) throw refused.cause;
    throw new UnavailableError("no raftmq node answered", { attempts: failures.map(({ address, error }) => ({ address, error })) });
  }
  return new RaftmqClient(connection);
}
