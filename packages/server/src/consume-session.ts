// A consuming session on the leader, fed by the node holding the client's stream (consume-front:
// this node's own, or a follower's relayed one). Subscriptions, settlements and prefetch changes
// become commands; deliveries arrive through ConsumerSessions; when the session's stream ends the
// session goes down in the state machine, and what its consumers held is requeued. A stream whose
// client falls too far behind its deliveries is ended (slow consumer).
import { vhostOf } from "./security/access-gate.ts";
import type * as grpc from "@grpc/grpc-js";
import { HEARTBEAT_METADATA_KEY, MAX_HEARTBEAT_MS, MIN_HEARTBEAT_MS, type raftmq } from "@raftmq/proto";
import { type CommandResult, unknownDeliveryTag } from "@raftmq/broker";
import { AckGatherer } from "./ack-gatherer.ts";
import { BoundedStreamWriter } from "./bounded-stream-writer.ts";
import type { BrokerServiceContext } from "./broker-service.ts";
import { propose } from "./call-routing.ts";
import { consumerIdOf } from "./command-builder.ts";
import { toGrpcFailure, toServiceError } from "./grpc-status.ts";
import { CommandFailedError, InvalidRequestError, NodeUnavailableError, OverloadedError } from "./node-errors.ts";

type Command = raftmq.v1.Command.$Properties;

/** The heartbeat interval a Consume call asks for in its metadata: 0 for none. Throws InvalidRequestError for a bad value. */
export function requestedHeartbeatMs(metadata: grpc.Metadata): number {
  const values = metadata.get(HEARTBEAT_METADATA_KEY);
  if (values.length === 0) return 0;
  const text = String(values[0]);
  const ms = /^\d{1,6}$/.test(text) ? Number(text) : Number.NaN;
  if (values.length > 1 || !(ms >= MIN_HEARTBEAT_MS && ms <= MAX_HEARTBEAT_MS)) {
    throw new InvalidRequestError(`${HEARTBEAT_METADATA_KEY} must be one whole number of milliseconds from ${MIN_HEARTBEAT_MS} to ${MAX_HEARTBEAT_MS}, got ${JSON.stringify(values.map(String))}`);
  }
  return ms;
}

/** A consuming session on the leader. */
export function consumeStream(ctx: BrokerServiceContext, call: grpc.ServerDuplexStream<raftmq.v1.ConsumeRequest, raftmq.v1.ConsumeResponse.$Properties>): void {
  const { driver, builder, sessions } = ctx;
  let heartbeatMs: number;
  try {
    heartbeatMs = requestedHeartbeatMs(call.metadata);
  } catch (err) {
    call.emit("error", toServiceError(err));
    return;
  }
  let ended = false;
  const writer = new BoundedStreamWriter(call, sessions.maxPendingBytes);
  let moreWanted = false;
  /** Consumer tags of this stream whose subscription asked for batch_deliveries. */
  const batchedTags = new Set<string>();
  /**
   * Consumer tags whose subscribe was proposed and not yet answered. The apply that subscribes a
   * consumer can deliver to it before the proposal's answer comes back, so the first delivery
   * writes `subscribed` ahead of itself: a client sees `subscribed` before any delivery.
   */
  const awaitingSubscribed = new Set<string>();
  const writeSubscribed = (tag: string) => {
    if (!awaitingSubscribed.delete(tag) || ended) return;
    call.write({ subscribed: tag });
  };
  const sessionId = sessions.open({
    batched: (consumerTag) => batchedTags.has(consumerTag),
    write: (response) => {
      if (ended) return;
      const d = response.delivery;
      if (d != null) {
        writeSubscribed(d.consumerTag ?? "");
        unacked.delivered(d.consumerTag ?? "", Number(d.deliveryTag ?? 0));
      }
      const batch = response.deliveries?.deliveries ?? [];
      if (batch.length > 0) writeSubscribed(batch[0]?.consumerTag ?? "");
      for (const b of batch) unacked.delivered(b.consumerTag ?? "", Number(b.deliveryTag ?? 0));
      const slow = writer.write(response);
      if (slow !== null) {
        ctx.log.warn({ session: sessionId, pendingBytes: slow.pendingBytes, limit: slow.maxPendingBytes }, "ending a slow consumer's stream");
        closeSession(toGrpcFailure(slow));
      }
    },
    deliveryPaused: () => {
      if (ended || moreWanted) return;
      moreWanted = true;
      // Asking only once the client has taken what it was given paces a no_ack consumer by how
      // fast it reads, the flow control RabbitMQ applies between a queue and a channel.
      writer.whenFlushed(() => {
        moreWanted = false;
        if (ended || !driver.isLeader) return;
        try {
          driver.submit([builder.tick()], null);
        } catch {
          // Leadership moved: this stream ends with it, and the idle Tick of the next leader resumes.
        }
      });
    },
    end: (failure) => {
      if (ended) return;
      ended = true;
      if (failure === null) call.end();
      else call.emit("error", { code: failure.code, details: failure.details, metadata: failure.metadata });
    },
  });
  if (sessionId === null) {
    call.emit("error", toServiceError(new OverloadedError("this node has its limit of consuming sessions; retry later or on another cluster")));
    return;
  }
  call.write({ session: { sessionId, heartbeatMs } });
  // Heartbeats go out at the interval whatever else is sent, except to a client that has not
  // taken what it was given: it has something to read already.
  const heartbeatTimer =
    heartbeatMs > 0
      ? setInterval(() => {
          if (!ended && writer.pendingBytes === 0) call.write({ heartbeat: {} });
        }, heartbeatMs)
      : null;
  heartbeatTimer?.unref();

  const unacked = new UnackedDeliveries();
  const timeoutMs = ctx.consumerTimeoutMs ?? 0;
  const timeoutTimer =
    timeoutMs > 0
      ? setInterval(
          () => {
            const late = unacked.olderThan(Date.now() - timeoutMs);
            if (late === null || ended) return;
            ctx.log.info({ event: "consumer-timeout", session: sessionId, consumer: late.consumerTag, deliveryTag: late.deliveryTag }, "ending a consumer whose delivery was not acknowledged in time");
            closeSession(
              toGrpcFailure(
                new CommandFailedError({
                  code: "PRECONDITION_FAILED",
                  message: `delivery acknowledgement timed out: consumer "${late.consumerTag}" held delivery ${late.deliveryTag} for longer than ${timeoutMs} ms (consumer-timeout-ms); what the stream held is requeued`,
                }),
              ),
            );
          },
          Math.max(100, Math.min(1000, Math.floor(timeoutMs / 4))),
        )
      : null;
  timeoutTimer?.unref();
  const reportError = (err: unknown, consumerTag: string, deliveryTag = 0) => {
    if (ended) return;
    const f = toGrpcFailure(err);
    call.write({ error: { code: f.code, message: f.details, consumerTag, deliveryTag } });
  };
  /** Proposes one command of the stream; a failure is reported naming the consumer (and delivery) it concerns. */
  const submit = (command: Command, consumerTag: string, then: { deliveryTag?: number; onOk?: (result: CommandResult | undefined) => void; onFailed?: () => void } = {}) => {
    const { deliveryTag = 0, onOk, onFailed } = then;
    propose(driver, [command]).then(
      (results) => {
        const r = results[0];
        if (r !== undefined && !r.ok) {
          onFailed?.();
          reportError(new CommandFailedError(r.error), consumerTag, deliveryTag);
        } else onOk?.(r);
      },
      (err: unknown) => {
        onFailed?.();
        if (err instanceof NodeUnavailableError) closeSession(toGrpcFailure(err));
        else reportError(err, consumerTag, deliveryTag);
      },
    );
  };
  // Single acks gathered per consumer within a turn, once every node applies AckTags.
  const acks = new AckGatherer((consumerTag, tags) => {
    try {
      if (tags.length === 1) {
        submit(builder.settle(sessionId, "ack", { consumerTag, deliveryTag: tags[0] }), consumerTag, { deliveryTag: tags[0] });
        return;
      }
      submit(builder.ackTags(sessionId, consumerTag, tags), consumerTag, {
        onOk: (r) => {
          // Each tag the consumer did not hold answers as its own ack would have.
          if (r?.ok !== true || r.kind !== "ackTags") return;
          for (const tag of r.unknown) reportError(new CommandFailedError(unknownDeliveryTag(tag, consumerIdOf(sessionId, consumerTag))), consumerTag, tag);
        },
      });
    } catch (err) {
      if (err instanceof NodeUnavailableError) closeSession(toGrpcFailure(err));
      else reportError(err, consumerTag);
    }
  });
  const closeSession = (failure: ReturnType<typeof toGrpcFailure> | null) => {
    // Acks that arrived before the end count, as RabbitMQ applies those read before a channel closes.
    if (!ended) acks.flush();
    if (timeoutTimer !== null) clearInterval(timeoutTimer);
    if (heartbeatTimer !== null) clearInterval(heartbeatTimer);
    const wasOpen = sessions.close(sessionId);
    if (!ended) {
      ended = true;
      if (failure === null) call.end();
      else call.emit("error", { code: failure.code, details: failure.details, metadata: failure.metadata });
    }
    // The state machine downs the session's consumers and requeues what they held.
    if (wasOpen && driver.isLeader) {
      try {
        driver.submit([builder.sessionDown(sessionId)], null);
      } catch (err) {
        ctx.log.warn({ err, session: sessionId }, "could not propose SessionDown; the next leader's grace sweep will");
      }
    }
  };

  call.on("data", (r: raftmq.v1.ConsumeRequest) => {
    if (ended) return;
    const kind = r.kind;
    const ackTag = builder.acksInBatches() ? gatherableAckTag(r) : 0;
    const single = ackTag > 0;
    if (!single) acks.flush();
    try {
      switch (kind) {
        case "subscribe": {
          const s = r.subscribe ?? {};
          const tag = s.consumerTag ?? "";
          if (s.noAck !== true) unacked.tracked.add(tag);
          if (s.batchDeliveries === true) batchedTags.add(tag);
          else batchedTags.delete(tag);
          const command = builder.subscribe(sessionId, s, vhostOf(call.metadata));
          awaitingSubscribed.add(tag);
          submit(command, tag, { onOk: () => writeSubscribed(tag), onFailed: () => awaitingSubscribed.delete(tag) });
          return;
        }
        case "cancel":
          submit(builder.cancel(sessionId, r.cancel ?? ""), r.cancel ?? "");
          return;
        case "ack":
        case "nack":
        case "reject": {
          const s = r[kind] ?? {};
          unacked.settled(s.consumerTag ?? "", Number(s.deliveryTag ?? 0), s.multiple === true);
          if (single) acks.add(s.consumerTag ?? "", ackTag);
          else submit(builder.settle(sessionId, kind, s), s.consumerTag ?? "", { deliveryTag: Number(s.deliveryTag ?? 0) });
          if (kind === "ack") ctx.metrics?.acked.inc();
          return;
        }
        case "setPrefetch":
          submit(builder.setPrefetch(sessionId, r.setPrefetch ?? {}), r.setPrefetch?.consumerTag ?? "");
          return;
        case undefined:
          reportError(new InvalidRequestError("a consume request must set one of subscribe, cancel, ack, nack, reject, set_prefetch"), "");
          return;
        default: {
          const never: never = kind;
          reportError(new InvalidRequestError(`unknown consume request ${String(never)}`), "");
        }
      }
    } catch (err) {
      if (err instanceof NodeUnavailableError) closeSession(toGrpcFailure(err));
      else reportError(err, "");
    }
  });
  call.on("end", () => closeSession(null));
  call.on("cancelled", () => closeSession(null));
  call.on("error", () => closeSession(null));
}

/** The delivery tag of a single ack that may go into an AckTags command, or 0 for any other request. */
function gatherableAckTag(r: raftmq.v1.ConsumeRequest): number {
  const a = r.kind === "ack" ? r.ack : null;
  if (a == null || a.multiple === true || (a.consumerTag ?? "") === "") return 0;
  const tag = Number(a.deliveryTag ?? 0);
  return Number.isSafeInteger(tag) && tag > 0 ? tag : 0;
}

/**
 * When each delivery of a stream's acknowledging consumers went out, until it is settled: the
 * consumer timeout looks at the oldest. Delivery tags rise per consumer, so each consumer's map
 * is in tag order.
 */
class UnackedDeliveries {
  /** Consumers whose deliveries wait for a settlement (not no_ack). */
  readonly tracked = new Set<string>();
  private readonly byConsumer = new Map<string, Map<number, number>>();

  delivered(consumerTag: string, deliveryTag: number): void {
    if (!this.tracked.has(consumerTag)) return;
    let tags = this.byConsumer.get(consumerTag);
    if (tags === undefined) {
      tags = new Map();
      this.byConsumer.set(consumerTag, tags);
    }
    tags.set(deliveryTag, Date.now());
  }

  settled(consumerTag: string, deliveryTag: number, multiple: boolean): void {
    const tags = this.byConsumer.get(consumerTag);
    if (tags === undefined) return;
    if (!multiple) {
      tags.delete(deliveryTag);
      return;
    }
    for (const tag of tags.keys()) {
      if (tag > deliveryTag) break;
      tags.delete(tag);
    }
  }

  /** The oldest delivery sent before `cutoff` and not settled, or null. */
  olderThan(cutoff: number): { consumerTag: string; deliveryTag: number } | null {
    for (const [consumerTag, tags] of this.byConsumer) {
      for (const [deliveryTag, sentAt] of tags) {
        if (sentAt < cutoff) return { consumerTag, deliveryTag };
        break;
      }
    }
    return null;
  }
}
