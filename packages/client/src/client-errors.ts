// Typed errors of the SDK. Every gRPC status becomes one of these in `fromGrpcError`, the one
// place that maps them; each carries what a caller needs to act (code, details, leader address).
import * as grpc from "@grpc/grpc-js";
import { type CallOutcome, statusDetailsOf } from "@raftmq/proto";

export const LEADER_METADATA_KEY = "raftmq-leader";

export interface ErrorContext {
  /** The node that answered (host:port), when known. */
  address?: string;
  /** The leader's client address from trailing metadata, when the node knew it. */
  leaderAddress?: string;
  /** The node's structured details (google.rpc.ErrorInfo of domain raftmq.io), when it sent them. */
  reason?: string;
  outcome?: CallOutcome;
  /** How long the node asked the caller to wait before trying again (google.rpc.RetryInfo). */
  retryDelayMs?: number;
}

/** Base of every error the SDK throws on purpose. */
export class RaftmqError extends Error {
  override name = "RaftmqError";
  readonly code: grpc.status;
  readonly details: string;
  readonly address: string | undefined;
  readonly leaderAddress: string | undefined;
  /** Why, from the node's ErrorInfo (NOT_LEADER, NO_LEADER, OUTCOME_UNKNOWN, NOT_FOUND, …); undefined when it sent none. */
  readonly reason: string | undefined;
  /**
   * What the failed call did, from the node's ErrorInfo: nothing proposed (`not_applied`), applied
   * as a refusal that changed nothing (`refused`), or maybe applied (`unknown`). Undefined when the
   * answer did not say (a broken connection, a deadline, an older node): treat it as `unknown`.
   */
  readonly outcome: CallOutcome | undefined;
  /**
   * How long the node asked to wait before trying again, from its google.rpc.RetryInfo: 1,000 ms
   * while a resource alarm blocks publishing, 100 ms during an election. Undefined when it did
   * not say. The SDK's publisher waits at least this long before it sends again.
   */
  readonly retryDelayMs: number | undefined;

  constructor(code: grpc.status, details: string, context: ErrorContext = {}) {
    super(context.address === undefined ? details : `${details} (at ${context.address})`);
    this.code = code;
    this.details = details;
    this.address = context.address;
    this.leaderAddress = context.leaderAddress;
    this.reason = context.reason;
    this.outcome = context.outcome;
    this.retryDelayMs = context.retryDelayMs;
  }

  /** The node said the failed call changed nothing (outcome not_applied or refused), so sending it again is not a retry. */
  get changedNothing(): boolean {
    return this.outcome === "not_applied" || this.outcome === "refused";
  }
}

/** The node is not the leader and could not forward; `leaderAddress` says where to go when known. */
export class NotLeaderError extends RaftmqError {
  override name = "NotLeaderError";
}
export class NotFoundError extends RaftmqError {
  override name = "NotFoundError";
}
/** Redeclared with other properties, unknown delivery tag, queue in use, dedup window passed … */
export class PreconditionFailedError extends RaftmqError {
  override name = "PreconditionFailedError";
}
/** A limit was hit (server-side pending commands, a queue's length, the publisher's queue). */
export class ResourceExhaustedError extends RaftmqError {
  override name = "ResourceExhaustedError";
}
export class InvalidArgumentError extends RaftmqError {
  override name = "InvalidArgumentError";
}
/** The server did not accept the credentials or the client certificate. Retrying with the same ones cannot help. */
export class AuthenticationError extends RaftmqError {
  override name = "AuthenticationError";
}
/** The user is known but may not do this: an administrator's call, or no permission on the vhost or resource. */
export class PermissionDeniedError extends RaftmqError {
  override name = "PermissionDeniedError";
}
/** The call's deadline passed; for a write, its outcome is unknown. */
export class DeadlineExceededError extends RaftmqError {
  override name = "DeadlineExceededError";
}

/** No node could be reached or none could serve; `attempts` says what was tried and what failed. */
export class UnavailableError extends RaftmqError {
  override name = "UnavailableError";
  readonly attempts: readonly { address: string; error: string }[];

  constructor(details: string, context: ErrorContext & { attempts?: readonly { address: string; error: string }[] } = {}) {
    const attempts = context.attempts ?? [];
    const tried = attempts.length === 0 ? "" : `; tried ${attempts.map((a) => `${a.address} (${a.error})`).join(", ")}`;
    super(grpc.status.UNAVAILABLE, `${details}${tried}`, context);
    this.attempts = attempts;
  }
}

/**
 * The publisher gave up on a message it had sent at least once without a confirm: it may or may
 * not be in the queue. Publishing it again with the same producer id and `sequence` is safe
 * while the broker still remembers that sequence (its dedup window): a duplicate is answered,
 * not enqueued twice. A message that was never sent fails with a plain UnavailableError.
 */
export class PublishOutcomeUnknownError extends UnavailableError {
  override name = "PublishOutcomeUnknownError";
  readonly producerId: string;
  readonly sequence: number;

  constructor(details: string, producerId: string, sequence: number, context: ErrorContext = {}) {
    super(`${details}; message ${sequence} of producer ${producerId} was sent without a confirm, so it may have been published`, context);
    this.producerId = producerId;
    this.sequence = sequence;
  }
}

/**
 * The broker no longer remembers this resent message: its sequence is older than the producer's
 * dedup window, or the producer's state was evicted or expired. So it cannot tell whether an
 * earlier attempt enqueued it. It was not enqueued now, and publishing it again cannot tell
 * either: the application decides, from its own records.
 */
export class DedupWindowPassedError extends PublishOutcomeUnknownError {
  override name = "DedupWindowPassedError";

  constructor(details: string, producerId: string, sequence: number, context: ErrorContext = {}) {
    super(details, producerId, sequence, context);
    this.message = `${details} (message ${sequence} of producer ${producerId})`;
  }
}

/** The client or publisher was closed while the call was pending. */
export class ClosedError extends RaftmqError {
  override name = "ClosedError";
  constructor(what: string) {
    super(grpc.status.CANCELLED, `${what} is closed`);
  }
}

export type NackKind = "no-route" | "reject-publish" | "failed";

/** The broker committed the publish but refused it: unroutable with mandatory, a full queue, or a failed command. */
export class PublishNackError extends RaftmqError {
  override name = "PublishNackError";
  readonly kind: NackKind;
  /** The queue that refused it (reject-publish). */
  readonly queue: string | undefined;
  /** The confirm's reason: "NO_ROUTE", "REJECT_PUBLISH queue=<name>", or an error message. */
  override readonly reason: string;

  constructor(reason: string) {
    super(grpc.status.FAILED_PRECONDITION, `publish not confirmed: ${reason}`);
    this.reason = reason;
    if (reason === "NO_ROUTE") {
      this.kind = "no-route";
      this.queue = undefined;
    } else if (reason.startsWith("REJECT_PUBLISH")) {
      this.kind = "reject-publish";
      this.queue = /queue=(.*)$/.exec(reason)?.[1];
    } else {
      this.kind = "failed";
      this.queue = undefined;
    }
  }
}

/** An ack/nack/reject for a delivery whose stream has ended: the broker redelivers it instead. */
export class StaleDeliveryError extends RaftmqError {
  override name = "StaleDeliveryError";
  constructor(deliveryTag: number) {
    super(grpc.status.FAILED_PRECONDITION, `delivery ${deliveryTag} belongs to a consuming stream that ended or moved to a new session; it will be redelivered, do not settle it`);
  }
}

/** The broker cancelled the subscription (e.g. its queue was deleted). */
export class ConsumerCancelledError extends RaftmqError {
  override name = "ConsumerCancelledError";
  constructor(
    readonly consumerTag: string,
    reason: string,
  ) {
    super(grpc.status.CANCELLED, `consumer ${consumerTag} was cancelled by the broker: ${reason}`);
  }
}

function isStatusError(err: unknown): err is Error & { code: number; details?: string; metadata?: grpc.Metadata } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === "number";
}

export function leaderFromMetadata(metadata: grpc.Metadata | undefined): string | undefined {
  const value = metadata?.get(LEADER_METADATA_KEY)[0];
  if (value === undefined) return undefined;
  const text = typeof value === "string" ? value : value.toString("utf8");
  return text === "" ? undefined : text;
}


/** The one mapping from a gRPC status to a typed error. */
export function errorFromStatus(code: grpc.status, details: string, metadata: grpc.Metadata | undefined, address?: string): RaftmqError {
  const structured = statusDetailsOf(metadata);
  const context: ErrorContext = { address, leaderAddress: leaderFromMetadata(metadata) ?? structured?.leader };
  if (structured !== null) {
    context.reason = structured.reason;
    context.outcome = structured.outcome;
    if (structured.retryDelayMs !== undefined) context.retryDelayMs = structured.retryDelayMs;
  }
  switch (code) {
    case grpc.status.NOT_FOUND:
      return new NotFoundError(code, details, context);
    case grpc.status.INVALID_ARGUMENT:
      return new InvalidArgumentError(code, details, context);
    case grpc.status.FAILED_PRECONDITION:
      return new PreconditionFailedError(code, details, context);
    case grpc.status.RESOURCE_EXHAUSTED:
      return new ResourceExhaustedError(code, details, context);
    case grpc.status.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(code, details, context);
    case grpc.status.UNAUTHENTICATED:
      return new AuthenticationError(code, details, context);
    case grpc.status.PERMISSION_DENIED:
      return new PermissionDeniedError(code, details, context);
    case grpc.status.UNAVAILABLE:
      return context.leaderAddress !== undefined ? new NotLeaderError(code, details, context) : new UnavailableError(details, context);
    default:
      return new RaftmqError(code, details, context);
  }
}

/** Errors about who the caller is: no retry and no other node will answer differently. */
export function isAccessError(err: unknown): boolean {
  return err instanceof AuthenticationError || err instanceof PermissionDeniedError;
}

/** Maps anything a grpc-js call rejects with; non-gRPC errors pass through unchanged. */
export function fromGrpcError(err: unknown, address?: string): Error {
  if (err instanceof RaftmqError) return err;
  if (isStatusError(err)) return errorFromStatus(err.code, err.details ?? err.message, err.metadata, address);
  return err instanceof Error ? err : new Error(String(err));
}

const NACK_CODES: Record<string, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  PRECONDITION_FAILED: grpc.status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
};

/** The error of a NACK confirm: a broker error ("NOT_FOUND: …") maps like a status, the rest is a PublishNackError. */
export function nackError(reason: string): RaftmqError {
  const match = /^([A-Z_]+): (.*)$/s.exec(reason);
  const code = match === null ? undefined : NACK_CODES[match[1] ?? ""];
  if (match !== null && code !== undefined) return errorFromStatus(code, match[2] ?? reason, undefined);
  return new PublishNackError(reason);
}
