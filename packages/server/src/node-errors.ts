// Typed failures of the node's request path. grpc-status.ts maps each to one gRPC status.
import type { BrokerError } from "@raftmq/broker";

/** No leader can take the call now: the client retries, at `leaderClientAddress` when known. */
export class NodeUnavailableError extends Error {
  override name = "NodeUnavailableError";
  constructor(
    detail: string,
    readonly leaderClientAddress = "",
  ) {
    super(detail);
  }
}

/**
 * The command may or may not have been committed (leadership changed while it was in flight).
 * A publish retried with the same producer id and sequence is applied at most once.
 */
export class OutcomeUnknownError extends Error {
  override name = "OutcomeUnknownError";
  constructor(detail: string) {
    super(`${detail}; outcome unknown; retry with the same producer id and sequence`);
  }
}

/** A bound of the node was reached (pending commands, streams ...). */
export class OverloadedError extends Error {
  override name = "OverloadedError";
}

/** A resource alarm is raised (memory or disk): this node takes no publishes until it clears. */
export class ResourceAlarmError extends Error {
  override name = "ResourceAlarmError";
}

/** A Consume stream's client reads slower than deliveries arrive (NATS's slow consumer). */
export class SlowConsumerError extends OverloadedError {
  override name = "SlowConsumerError";
  constructor(
    readonly pendingBytes: number,
    readonly maxPendingBytes: number,
  ) {
    super(
      `slow consumer: ${pendingBytes} bytes of deliveries wait to be sent on this stream, over its limit of ${maxPendingBytes} (consume-max-pending-bytes); ` +
        "its unacknowledged messages are requeued: read faster, lower the prefetch, or consume with acks",
    );
  }
}

/** The request itself is malformed; nothing was proposed. */
export class InvalidRequestError extends Error {
  override name = "InvalidRequestError";
}

/** A command was applied and answered with a broker error. */
export class CommandFailedError extends Error {
  override name = "CommandFailedError";
  constructor(readonly error: BrokerError) {
    super(error.message);
  }
}

/** The node is stopping or was removed from the cluster. */
export class NodeStoppingError extends Error {
  override name = "NodeStoppingError";
}

/** The caller did not prove who it is (no, unknown or wrong credentials, or a refused certificate). */
export class UnauthenticatedError extends Error {
  override name = "UnauthenticatedError";
}

/** The caller is known but lacks what the call needs (a permission, a tag, access to the vhost). */
export class AccessDeniedError extends Error {
  override name = "AccessDeniedError";
}
