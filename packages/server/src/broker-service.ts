// Handlers of service Broker. Writes run on the leader (a follower forwards them); reads are
// linearizable through ReadIndex and answered from the local state machine on any node.
import type * as grpc from "@grpc/grpc-js";
import { type CommandResult, type ExchangeType, type QueueInfo, queueArgumentsToProto } from "@raftmq/broker";
import { raftmq } from "@raftmq/proto";
import type { Logger } from "pino";
import type { CommandBuilder } from "./command-builder.ts";
import type { ConsumerSessions } from "./consumer-sessions.ts";
import { FORWARDED_METADATA_KEY, toServiceError } from "./grpc-status.ts";
import type { LeaderForwarder } from "./leader-forwarder.ts";
import { CommandFailedError, InvalidRequestError, ResourceAlarmError } from "./node-errors.ts";
import { leaderUnary, linearizableUnary, propose, routeWrite } from "./call-routing.ts";
import { consumeFront } from "./consume-front.ts";
import { consumeStream } from "./consume-session.ts";
import { confirmOf, isOutcomeUnknown, publishStream } from "./publish-stream.ts";
import type { NodeMetrics } from "./node-metrics.ts";
import type { RaftDriver } from "./raft-driver.ts";
import { brokerServiceDefinition } from "@raftmq/proto/grpc";
import { vhostOf } from "./security/access-gate.ts";

type Command = raftmq.v1.Command.$Properties;

export interface BrokerServiceContext {
  driver: RaftDriver;
  builder: CommandBuilder;
  sessions: ConsumerSessions;
  forwarder: LeaderForwarder;
  /** How long a call waits for an election before answering UNAVAILABLE. */
  leaderWaitMs: number;
  /** PublishStream requests whose confirms are outstanding on one stream. */
  maxStreamWindow: number;
  /** A delivery unacknowledged this long ends its stream; 0: never. */
  consumerTimeoutMs?: number;
  /** How long a Consume stream whose session went down with a leader may take to find the next. */
  consumeResumeMs: number;
  /** Whether this node is shutting down: its Consume streams end with their sessions then. */
  stopping: () => boolean;
  /** Why publishing is blocked on this node (a resource alarm), or "" when it is not. */
  publishBlocked?: () => string;
  log: Logger;
  metrics?: NodeMetrics;
}




function ok<K extends CommandResult extends infer R ? (R extends { ok: true; kind: infer Kind } ? Kind : never) : never>(
  result: CommandResult | undefined,
  kind: K,
): Extract<CommandResult, { ok: true; kind: K }> {
  if (result === undefined) throw new Error(`no result for a ${kind} command`);
  if (!result.ok) throw new CommandFailedError(result.error);
  if (result.kind !== kind) throw new Error(`a ${kind} command answered a ${result.kind} result`);
  return result as Extract<CommandResult, { ok: true; kind: K }>;
}

async function one(driver: RaftDriver, command: Command): Promise<CommandResult | undefined> {
  return (await propose(driver, [command]))[0];
}

const EXCHANGE_TYPES: Record<ExchangeType, raftmq.v1.ExchangeType> = {
  direct: raftmq.v1.ExchangeType.EXCHANGE_TYPE_DIRECT,
  fanout: raftmq.v1.ExchangeType.EXCHANGE_TYPE_FANOUT,
  topic: raftmq.v1.ExchangeType.EXCHANGE_TYPE_TOPIC,
  headers: raftmq.v1.ExchangeType.EXCHANGE_TYPE_HEADERS,
};

function queueInfoMessage(q: QueueInfo): raftmq.v1.QueueInfo.$Properties {
  return {
    name: q.name,
    durable: q.durable,
    exclusive: q.exclusive,
    autoDelete: q.autoDelete,
    arguments: queueArgumentsToProto(q.arguments),
    messagesReady: q.messagesReady,
    messagesUnacked: q.messagesUnacknowledged,
    bytesReady: q.readyBytes,
    consumers: q.consumers,
  };
}


/**
 * A publish refused while this node's resource alarm is raised: on the node the client called
 * and, for a forwarded call, on the leader too.
 */
function unlessAlarmed(ctx: BrokerServiceContext, handler: grpc.handleUnaryCall<unknown, unknown>): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const blocked = ctx.publishBlocked?.() ?? "";
    if (blocked !== "") callback(toServiceError(new ResourceAlarmError(blocked)));
    else handler(call, callback);
  };
}

type UnaryLocal<Q> = (request: Q, call: grpc.ServerUnaryCall<Q, unknown>) => Promise<unknown>;

export function brokerHandlers(ctx: BrokerServiceContext): grpc.UntypedServiceImplementation {
  const { driver, builder, forwarder } = ctx;
  const defs = brokerServiceDefinition;

  /** A write: runs on the leader, forwarded there from a follower. */
  const write = <Q>(name: keyof typeof defs, local: UnaryLocal<Q>) => leaderUnary<Q>(ctx, defs[name] as unknown as grpc.MethodDefinition<unknown, unknown>, local);

  /** A read: linearizable on any node, in the call's vhost. */
  const read = <Q>(local: (request: Q, vhost: string) => unknown) => linearizableUnary<Q>(driver, (request, call) => local(request, vhostOf(call.metadata)));

  return {
    DeclareExchange: write<raftmq.v1.DeclareExchangeRequest>("DeclareExchange", async (r, call) => {
      ok(await one(driver, builder.declareExchange(r, vhostOf(call.metadata))), "declareExchange");
      return {};
    }),
    DeleteExchange: write<raftmq.v1.DeleteExchangeRequest>("DeleteExchange", async (r, call) => {
      ok(await one(driver, builder.deleteExchange(r, vhostOf(call.metadata))), "deleteExchange");
      return {};
    }),
    DeclareQueue: write<raftmq.v1.DeclareQueueRequest>("DeclareQueue", async (r, call) => {
      const command = builder.declareQueue(r, vhostOf(call.metadata));
      // An exclusive queue lives as long as its session's Consume stream, which is open on the
      // leader (this node) or not at all. A stream that ended has proposed its SessionDown
      // already, so a queue declared for it now would outlive it with nobody to delete it.
      if (r.exclusive && !ctx.sessions.has(r.sessionId)) {
        throw new CommandFailedError({
          code: "PRECONDITION_FAILED",
          message: `session "${r.sessionId}" has no open Consume stream on the leader: an exclusive queue belongs to a live session; open a Consume stream and use the session id it announces`,
        });
      }
      const res = ok(await one(driver, command), "declareQueue");
      return { name: res.queue, messageCount: res.messageCount, consumerCount: res.consumerCount };
    }),
    DeleteQueue: write<raftmq.v1.DeleteQueueRequest>("DeleteQueue", async (r, call) => {
      const res = ok(await one(driver, builder.deleteQueue(r, vhostOf(call.metadata))), "deleteQueue");
      return { messageCount: res.messageCount };
    }),
    PurgeQueue: write<raftmq.v1.PurgeQueueRequest>("PurgeQueue", async (r, call) => {
      const res = ok(await one(driver, builder.purgeQueue(r, vhostOf(call.metadata))), "purgeQueue");
      return { messageCount: res.messageCount };
    }),
    Bind: write<raftmq.v1.BindRequest>("Bind", async (r, call) => {
      ok(await one(driver, builder.bind(r, vhostOf(call.metadata))), "bind");
      return {};
    }),
    Unbind: write<raftmq.v1.UnbindRequest>("Unbind", async (r, call) => {
      ok(await one(driver, builder.unbind(r, vhostOf(call.metadata))), "unbind");
      return {};
    }),
    Publish: unlessAlarmed(ctx, write<raftmq.v1.PublishRequest>("Publish", async (r, call) => {
      const commands = builder.publish(r, vhostOf(call.metadata));
      const results = await propose(driver, commands);
      ctx.metrics?.published.inc(commands.length);
      // A single message that failed answers with the failure's status, like a failed command;
      // one of unknown outcome has its own confirm status instead, as in a batch.
      const only = results[0];
      if (results.length === 1 && only !== undefined && !only.ok && !isOutcomeUnknown(only)) throw new CommandFailedError(only.error);
      return { confirms: results.map(confirmOf), clientSequence: r.clientSequence ?? 0 };
    })),
    PublishStream: (call: grpc.ServerDuplexStream<raftmq.v1.PublishRequest, raftmq.v1.PublishResponse.$Properties>) => {
      const blocked = ctx.publishBlocked?.() ?? "";
      if (blocked !== "") {
        call.emit("error", toServiceError(new ResourceAlarmError(blocked)));
        return;
      }
      routeWrite(ctx, call.metadata).then(
        (route) => {
          if (route.local) publishStream(ctx, call);
          else forwarder.duplex(route.address, defs.PublishStream as unknown as grpc.MethodDefinition<unknown, unknown>, call as grpc.ServerDuplexStream<unknown, unknown>);
        },
        (err: unknown) => call.emit("error", toServiceError(err)),
      );
    },
    Consume: (call: grpc.ServerDuplexStream<raftmq.v1.ConsumeRequest, raftmq.v1.ConsumeResponse.$Properties>) => {
      // A client's stream is held where it arrived, across leader changes; a stream relayed by
      // the node holding one is a session here, on the leader, and ends with its leadership.
      if (call.metadata.get(FORWARDED_METADATA_KEY).length === 0) {
        consumeFront(ctx, call);
        return;
      }
      routeWrite(ctx, call.metadata).then(
        () => consumeStream(ctx, call),
        (err: unknown) => call.emit("error", toServiceError(err)),
      );
    },
    Get: write<raftmq.v1.GetRequest>("Get", async (r, call) => {
      const vhost = vhostOf(call.metadata);
      const res = ok(await one(driver, builder.get(r, vhost)), "get");
      if (res.empty) return { messageCount: driver.broker.queueInfo(r.queue ?? "", vhost)?.messagesReady ?? 0 };
      const m = res.message;
      return {
        delivery: {
          consumerTag: "",
          deliveryTag: res.deliveryTag,
          queue: r.queue ?? "",
          exchange: m.exchange,
          routingKey: m.routingKey,
          redelivered: res.redelivered,
          deliveryCount: res.deliveryCount,
          properties: m.properties,
          body: driver.readBody(m),
        },
        messageCount: res.messageCount,
      };
    }),
    QueueInfo: read<raftmq.v1.QueueInfoRequest>((r, vhost) => {
      const name = r.name ?? "";
      if (name === "") throw new InvalidRequestError("queue info needs a queue name");
      const q = driver.broker.queueInfo(name, vhost);
      if (q === undefined) throw new CommandFailedError({ code: "NOT_FOUND", message: `no queue "${name}"` });
      return { queue: queueInfoMessage(q) };
    }),
    ListQueues: read<raftmq.v1.ListQueuesRequest>((_r, vhost) => ({ queues: driver.broker.listQueues(vhost).map(queueInfoMessage) })),
    ListExchanges: read<raftmq.v1.ListExchangesRequest>((_r, vhost) => ({
      exchanges: driver.broker.listExchanges(vhost).map((e) => ({
        name: e.name,
        type: EXCHANGE_TYPES[e.type],
        durable: e.durable,
        autoDelete: e.autoDelete,
        internal: e.internal,
        alternateExchange: e.alternateExchange,
      })),
    })),
    ListBindings: read<raftmq.v1.ListBindingsRequest>((r, vhost) => {
      const exchange = r.exchange ?? "";
      const queue = r.queue ?? "";
      const destinationExchange = r.destinationExchange ?? "";
      return {
        bindings: driver.broker
          .listBindings(vhost)
          .filter(
            (b) =>
              (exchange === "" || b.exchange === exchange) &&
              (queue === "" || b.queue === queue) &&
              (destinationExchange === "" || b.destinationExchange === destinationExchange),
          )
          .map((b) => ({ exchange: b.exchange, queue: b.queue, destinationExchange: b.destinationExchange, routingKey: b.routingKey, arguments: b.arguments })),
      };
    }),
  };
}




