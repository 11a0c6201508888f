// Maps client API requests onto broker Commands and validates them before anything is proposed.
// Kept apart from the gRPC handlers so other front ends (AMQP) build the same commands.
import { ACK_TAGS_VERSION, type BrokerLimits, type Command, commandKind, defaultLimits, MACHINE_VERSION, validateCommand, versionGateError } from "@raftmq/broker";
import type { raftmq } from "@raftmq/proto";
import { CommandFailedError, InvalidRequestError } from "./node-errors.ts";
import { limitMessage, requestLimitError } from "./request-limits.ts";

type V1 = typeof raftmq.v1;
type Props<K extends keyof V1> = V1[K] extends { prototype: infer P } ? Partial<P> : never;

/** The vhost field of a command: empty for the default vhost, so such commands read as before vhosts. */
function vhostField(vhost: string): { vhost?: string } {
  return vhost === "/" || vhost === "" ? {} : { vhost };
}

/** A binding's destination exchange, only when the request sets it: a queue binding reads as before. */
function destinationField(destinationExchange: string | null | undefined): { destinationExchange?: string } {
  return destinationExchange == null ? {} : { destinationExchange };
}

export function consumerIdOf(sessionId: string, consumerTag: string): string {
  return `${sessionId}/${consumerTag}`;
}

export class CommandBuilder {
  private readonly limitsInForce: () => Readonly<BrokerLimits>;

  private readonly machineVersion: () => number;

  /**
   * `limits`: the cluster's settings as this node has applied them (they change through the log).
   * The request limits among them (request-limits.ts) are checked here only, never by apply; the
   * broker's are checked here to spare the log most bad commands, and again by apply under the
   * values in force at the command's own entry, which decide.
   *
   * `machineVersion`: the state-machine version this node has applied. A command the version in
   * force cannot apply is refused here, before it reaches the log: code of an older version would
   * apply it differently (a vhost field it does not know, say).
   */
  constructor(limits: Readonly<BrokerLimits> | (() => Readonly<BrokerLimits>) = defaultLimits, machineVersion: () => number = () => MACHINE_VERSION) {
    this.limitsInForce = typeof limits === "function" ? limits : () => limits;
    this.machineVersion = machineVersion;
  }

  get limits(): Readonly<BrokerLimits> {
    return this.limitsInForce();
  }

  /**
   * Throws CommandFailedError (INVALID_ARGUMENT) when the command fails the stateless checks: the
   * request limits first (front end only, so old log entries apply as they always did), then the
   * broker's own checks and the version gate.
   */
  checked(command: Command, context = ""): Command {
    const kind = commandKind(command);
    const limits = this.limits;
    const error =
      requestLimitError(command, limits) ??
      validateCommand(command, limits) ??
      (kind === null ? null : versionGateError(kind, command, this.machineVersion()));
    if (error !== null) throw new CommandFailedError(context === "" ? error : { code: error.code, message: `${context}: ${error.message}` });
    return command;
  }

  declareExchange(r: Props<"DeclareExchangeRequest">, vhost = "/"): Command {
    return this.checked({
      declareExchange: {
        name: r.name ?? "",
        type: r.type ?? 0,
        durable: r.durable ?? false,
        autoDelete: r.autoDelete ?? false,
        internal: r.internal ?? false,
        alternateExchange: r.alternateExchange ?? "",
        passive: r.passive ?? false,
        ...vhostField(vhost),
      },
    });
  }

  deleteExchange(r: Props<"DeleteExchangeRequest">, vhost = "/"): Command {
    return this.checked({ deleteExchange: { name: r.name ?? "", ifUnused: r.ifUnused ?? false, ...vhostField(vhost) } });
  }

  declareQueue(r: Props<"DeclareQueueRequest">, vhost = "/"): Command {
    if (r.exclusive === true && (r.sessionId ?? "") === "") {
      throw new InvalidRequestError(`exclusive queue "${r.name ?? ""}" needs session_id: open a Consume stream and use the session id it announces`);
    }
    return this.checked({
      declareQueue: {
        name: r.name ?? "",
        durable: r.durable ?? false,
        exclusive: r.exclusive ?? false,
        ownerSessionId: r.sessionId ?? "",
        autoDelete: r.autoDelete ?? false,
        arguments: r.arguments ?? null,
        passive: r.passive ?? false,
        ...vhostField(vhost),
      },
    });
  }

  deleteQueue(r: Props<"DeleteQueueRequest">, vhost = "/"): Command {
    return this.checked({ deleteQueue: { name: r.name ?? "", ifUnused: r.ifUnused ?? false, ifEmpty: r.ifEmpty ?? false, sessionId: r.sessionId ?? "", ...vhostField(vhost) } });
  }

  purgeQueue(r: Props<"PurgeQueueRequest">, vhost = "/"): Command {
    return this.checked({ purgeQueue: { name: r.name ?? "", sessionId: r.sessionId ?? "", ...vhostField(vhost) } });
  }

  /**
   * queue.bind, or exchange.bind when `destinationExchange` is set: `exchange` is the source (AMQP's
   * exchange.bind names it `source`, and the destination `destination`). Exactly one of `queue`
   * and `destinationExchange` (set to "" it names the default exchange, which apply refuses).
   */
  bind(r: Props<"BindRequest">, vhost = "/"): Command {
    return this.checked({
      bind: { exchange: r.exchange ?? "", queue: r.queue ?? "", routingKey: r.routingKey ?? "", arguments: r.arguments ?? [], sessionId: r.sessionId ?? "", ...vhostField(vhost), ...destinationField(r.destinationExchange) },
    });
  }

  /** queue.unbind, or exchange.unbind when `destinationExchange` is set, as bind. */
  unbind(r: Props<"UnbindRequest">, vhost = "/"): Command {
    return this.checked({
      unbind: { exchange: r.exchange ?? "", queue: r.queue ?? "", routingKey: r.routingKey ?? "", arguments: r.arguments ?? [], sessionId: r.sessionId ?? "", ...vhostField(vhost), ...destinationField(r.destinationExchange) },
    });
  }

  /** One Publish command per message. */
  publish(r: Props<"PublishRequest">, vhost = "/"): Command[] {
    const inVhost = vhostField(vhost);
    const messages = r.messages ?? [];
    if (messages.length === 0) throw new InvalidRequestError("a publish request needs at least one message");
    const max = this.limits.maxMessagesPerPublish;
    if (messages.length > max) throw new InvalidRequestError(limitMessage("maxMessagesPerPublish", "", messages.length, max));
    const out: Command[] = new Array(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as raftmq.v1.OutboundMessage.$Properties;
      const command: Command = {
        publish: {
          exchange: m.exchange ?? "",
          routingKey: m.routingKey ?? "",
          mandatory: m.mandatory ?? false,
          properties: m.properties ?? null,
          body: m.body ?? null,
          producerId: m.producerId ?? "",
          sequence: m.sequence ?? 0,
          ...inVhost,
          // Only a retry of an idempotent producer is marked: the field costs nothing otherwise.
          ...((m.retry ?? false) && (m.producerId ?? "") !== "" ? { retry: true } : {}),
        },
      };
      out[i] = messages.length === 1 ? this.checked(command) : this.checked(command, `message ${i}`);
    }
    return out;
  }

  subscribe(sessionId: string, s: raftmq.v1.Subscription.$Properties, vhost = "/"): Command {
    const tag = s.consumerTag ?? "";
    if (tag === "") throw new InvalidRequestError("a subscription needs a consumer_tag");
    return this.checked({
      subscribe: {
        consumerId: consumerIdOf(sessionId, tag),
        sessionId,
        queue: s.queue ?? "",
        prefetch: s.prefetch ?? 0,
        noAck: s.noAck ?? false,
        exclusive: s.exclusive ?? false,
        consumerTag: tag,
        arguments: s.arguments ?? [],
        ...vhostField(vhost),
      },
    });
  }

  cancel(sessionId: string, consumerTag: string): Command {
    if (consumerTag === "") throw new InvalidRequestError("cancel needs a consumer tag");
    return this.checked({ cancel: { consumerId: consumerIdOf(sessionId, consumerTag) } });
  }

  setPrefetch(sessionId: string, r: raftmq.v1.SetPrefetchRequest.$Properties): Command {
    const tag = r.consumerTag ?? "";
    if (tag === "") throw new InvalidRequestError("set_prefetch needs a consumer tag");
    return this.checked({ setPrefetch: { consumerId: consumerIdOf(sessionId, tag), prefetch: r.prefetch ?? 0 } });
  }

  settle(sessionId: string, kind: "ack" | "nack" | "reject", s: raftmq.v1.Settlement.$Properties): Command {
    const tag = s.consumerTag ?? "";
    if (tag === "") throw new InvalidRequestError(`${kind} needs the consumer tag of the delivery`);
    const consumerId = consumerIdOf(sessionId, tag);
    const deliveryTag = s.deliveryTag ?? 0;
    switch (kind) {
      case "ack":
        return this.checked({ ack: { consumerId, deliveryTag, multiple: s.multiple ?? false } });
      case "nack":
        return this.checked({ nack: { consumerId, deliveryTag, multiple: s.multiple ?? false, requeue: s.requeue ?? false } });
      case "reject":
        return this.checked({ reject: { consumerId, deliveryTag, requeue: s.requeue ?? false } });
      default: {
        const never: never = kind;
        throw new InvalidRequestError(`unknown settlement ${String(never)}`);
      }
    }
  }

  /** Single acks of one consumer in one command (AckTags); see acksInBatches. */
  ackTags(sessionId: string, consumerTag: string, deliveryTags: number[]): Command {
    if (consumerTag === "") throw new InvalidRequestError("ack needs the consumer tag of the delivery");
    return this.checked({ ackTags: { consumerId: consumerIdOf(sessionId, consumerTag), deliveryTags } });
  }

  /** Whether the state-machine version in force applies AckTags. */
  acksInBatches(): boolean {
    return this.machineVersion() >= ACK_TAGS_VERSION;
  }

  /** basic.get with automatic acknowledgement. */
  get(r: Props<"GetRequest">, vhost = "/"): Command {
    return this.checked({ get: { queue: r.queue ?? "", noAck: true, sessionId: "", ...vhostField(vhost) } });
  }

  sessionDown(sessionId: string): Command {
    return this.checked({ sessionDown: { sessionId } });
  }

  tick(): Command {
    return { tick: {} };
  }

  /** Unset fields of `settings` keep the value in force. */
  setClusterSettings(r: Props<"SetSettingsRequest">): Command {
    return this.checked({ setClusterSettings: { machineVersion: r.machineVersion ?? 0, settings: r.settings ?? null } });
  }
}
