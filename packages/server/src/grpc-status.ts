// The one place where every failure becomes a gRPC status, with a message a person can act on.
import * as grpc from "@grpc/grpc-js";
import type { BrokerError, BrokerErrorCode } from "@raftmq/broker";
import { NotLeaderError, ProposalDroppedError, RaftInvariantError } from "@raftmq/raft";
import { type CallOutcome, type ErrorDetails, encodeStatusDetails, STATUS_DETAILS_METADATA_KEY, statusDetailsOf } from "@raftmq/proto";
import { CorruptionError, StorageFailedError } from "@raftmq/storage";
import {
  CommandFailedError,
  InvalidRequestError,
  NodeStoppingError,
  NodeUnavailableError,
  OutcomeUnknownError,
  OverloadedError,
  ResourceAlarmError,
  UnauthenticatedError,
  AccessDeniedError,
} from "./node-errors.ts";

export const LEADER_METADATA_KEY = "raftmq-leader";
export const FORWARDED_METADATA_KEY = "raftmq-forwarded";

export interface GrpcFailure {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
}

export function brokerErrorStatus(code: BrokerErrorCode): grpc.status {
  switch (code) {
    case "INVALID_ARGUMENT":
      return grpc.status.INVALID_ARGUMENT;
    case "NOT_FOUND":
      return grpc.status.NOT_FOUND;
    case "PRECONDITION_FAILED":
      return grpc.status.FAILED_PRECONDITION;
    case "RESOURCE_EXHAUSTED":
      return grpc.status.RESOURCE_EXHAUSTED;
    case "OUTCOME_UNKNOWN":
      return grpc.status.UNKNOWN;
    default: {
      const never: never = code;
      return never;
    }
  }
}

/**
 * Characters of a status message that are sent. It travels percent-encoded in the HTTP/2 trailers,
 * which peers bound (gRPC C-core: 8 KiB of metadata); a message echoing a long name from the
 * request would keep the status from arriving at all. 512 characters encode to at most 4.5 KiB.
 */
export const MAX_STATUS_DETAILS_CHARS = 512;

/** `details` cut to MAX_STATUS_DETAILS_CHARS, never inside a surrogate pair. */
export function statusDetails(details: string): string {
  if (details.length <= MAX_STATUS_DETAILS_CHARS) return details;
  const high = details.charCodeAt(MAX_STATUS_DETAILS_CHARS - 1);
  const end = high >= 0xd800 && high <= 0xdbff ? MAX_STATUS_DETAILS_CHARS - 1 : MAX_STATUS_DETAILS_CHARS;
  return `${details.slice(0, end)}… (${details.length - end} more characters)`;
}

/** How long a publisher refused by a resource alarm waits before it tries again (alarms are checked every second). */
export const ALARM_RETRY_DELAY_MS = 1000;

/** A moment for a client to wait before retrying what an election or a full pipeline refused. */
export const RETRY_DELAY_MS = 100;

/**
 * A status with its structured details (google.rpc.Status in grpc-status-details-bin: ErrorInfo
 * with reason and outcome, RetryInfo when retrying can help) and, when known, the leader's address
 * in the raftmq-leader trailer as well.
 */
export function statusFailure(code: grpc.status, message: string, details: ErrorDetails): GrpcFailure {
  const text = statusDetails(message);
  const metadata = new grpc.Metadata();
  if (details.leader !== undefined && details.leader !== "") metadata.set(LEADER_METADATA_KEY, details.leader);
  metadata.set(STATUS_DETAILS_METADATA_KEY, encodeStatusDetails(code, text, details));
  return { code, details: text, metadata };
}

export function fromBrokerError(error: BrokerError): GrpcFailure {
  const unknown = error.code === "OUTCOME_UNKNOWN";
  return statusFailure(brokerErrorStatus(error.code), error.message, { reason: error.code, outcome: unknown ? "unknown" : "refused" });
}

const retry = { retryDelayMs: RETRY_DELAY_MS };

/** Maps any error thrown on the request path; unknown errors become INTERNAL. */
export function toGrpcFailure(err: unknown): GrpcFailure {
  if (err instanceof CommandFailedError) return fromBrokerError(err.error);
  if (err instanceof InvalidRequestError) return statusFailure(grpc.status.INVALID_ARGUMENT, err.message, { reason: "INVALID_REQUEST", outcome: "refused" });
  if (err instanceof UnauthenticatedError) return statusFailure(grpc.status.UNAUTHENTICATED, err.message, { reason: "UNAUTHENTICATED", outcome: "refused" });
  if (err instanceof AccessDeniedError) return statusFailure(grpc.status.PERMISSION_DENIED, err.message, { reason: "PERMISSION_DENIED", outcome: "refused" });
  if (err instanceof NodeUnavailableError) {
    const leader = err.leaderClientAddress;
    const hint = leader === "" ? "retry shortly" : `retry, or call the leader at ${leader}`;
    return statusFailure(grpc.status.UNAVAILABLE, `${err.message}; ${hint}`, { reason: leader === "" ? "NO_LEADER" : "NOT_LEADER", outcome: "not_applied", leader, ...(leader === "" ? retry : {}) });
  }
  if (err instanceof OutcomeUnknownError) return statusFailure(grpc.status.UNAVAILABLE, err.message, { reason: "OUTCOME_UNKNOWN", outcome: "unknown", ...retry });
  if (err instanceof ResourceAlarmError) {
    return statusFailure(grpc.status.RESOURCE_EXHAUSTED, `publishing is blocked: ${err.message}; consumers go on, and publishing resumes by itself once the alarm clears: retry later`, {
      reason: "RESOURCE_ALARM",
      outcome: "not_applied",
      retryDelayMs: ALARM_RETRY_DELAY_MS,
    });
  }
  if (err instanceof OverloadedError) return statusFailure(grpc.status.RESOURCE_EXHAUSTED, err.message, { reason: "OVERLOADED", outcome: "not_applied", ...retry });
  if (err instanceof NodeStoppingError) return statusFailure(grpc.status.UNAVAILABLE, `${err.message}; retry on another node`, { reason: "NODE_STOPPING", outcome: "unknown" });
  if (err instanceof NotLeaderError) return statusFailure(grpc.status.UNAVAILABLE, `${err.message}; retry shortly`, { reason: "NOT_LEADER", outcome: "not_applied", ...retry });
  if (err instanceof ProposalDroppedError) {
    switch (err.reason) {
      case "too-large":
        return statusFailure(grpc.status.INVALID_ARGUMENT, `${err.message}: send fewer or smaller messages per call`, { reason: "PROPOSAL_TOO_LARGE", outcome: "refused" });
      case "invalid-conf-change":
      case "conf-change-pending":
      case "not-a-member":
        return statusFailure(grpc.status.FAILED_PRECONDITION, err.message, { reason: "MEMBERSHIP_CHANGE_REFUSED", outcome: "refused" });
      case "uncommitted-limit":
      case "leadership-transfer":
        return statusFailure(grpc.status.UNAVAILABLE, `${err.message}; retry shortly`, { reason: "PROPOSAL_DROPPED", outcome: "not_applied", ...retry });
      default: {
        const never: never = err.reason;
        return statusFailure(grpc.status.INTERNAL, String(never), { reason: "INTERNAL", outcome: "unknown" });
      }
    }
  }
  if (err instanceof StorageFailedError || err instanceof CorruptionError) {
    return statusFailure(grpc.status.UNAVAILABLE, `this node's storage failed (${err.message}); call another node`, { reason: "STORAGE_FAILED", outcome: "unknown" });
  }
  if (err instanceof RaftInvariantError) return statusFailure(grpc.status.INTERNAL, `${err.message}; the node is stopping`, { reason: "INTERNAL", outcome: "unknown" });
  const message = err instanceof Error ? err.message : String(err);
  return statusFailure(grpc.status.INTERNAL, `internal error: ${message}`, { reason: "INTERNAL", outcome: "unknown" });
}

/**
 * A status on its way back from the leader to the client. The leader's own (it has details)
 * passes as it is. One the transport made on the way (a refused connection, a reset stream, a
 * protocol error: grpc-js says UNAVAILABLE, INTERNAL or UNKNOWN) says nothing a client can act on
 * and may follow a request that was applied: it becomes UNAVAILABLE of unknown outcome, never
 * INTERNAL. Other statuses of the framework (a deadline, a message over the size limit) keep their
 * code and gain details.
 */
export function relayedFailure(status: { code: grpc.status; details: string; metadata?: grpc.Metadata }, leaderClientAddress: string): GrpcFailure {
  if (status.metadata !== undefined && statusDetailsOf(status.metadata) !== null) return { code: status.code, details: status.details, metadata: status.metadata };
  const leader = leaderClientAddress;
  switch (status.code) {
    case grpc.status.UNAVAILABLE:
    case grpc.status.INTERNAL:
    case grpc.status.UNKNOWN:
    case grpc.status.CANCELLED: {
      const where = leader === "" ? "the leader" : `the leader (client address ${leader})`;
      return statusFailure(grpc.status.UNAVAILABLE, `this node could not relay the call to ${where}: ${status.details}; the outcome is unknown; retry`, {
        reason: "LEADER_UNREACHABLE",
        outcome: "unknown",
        leader,
        ...retry,
      });
    }
    case grpc.status.DEADLINE_EXCEEDED:
      return statusFailure(status.code, status.details, { reason: "DEADLINE_EXCEEDED", outcome: "unknown", leader });
    default:
      return statusFailure(status.code, status.details, { reason: grpc.status[status.code] ?? "UNKNOWN", outcome: "refused", leader });
  }
}

/** A relayed failure as the error a forwarded unary call rejects with. */
export class RelayedStatusError extends Error implements grpc.ServiceError {
  override name = "RelayedStatusError";
  readonly code: grpc.status;
  readonly details: string;
  readonly metadata: grpc.Metadata;

  constructor(failure: GrpcFailure) {
    super(failure.details);
    this.code = failure.code;
    this.details = failure.details;
    this.metadata = failure.metadata;
  }
}


/**
 * The shape grpc-js accepts as a call's error. `outcome` overrides what the details say the call
 * did: a stream that fails with requests outstanding ends them all, some perhaps applied.
 */
export function toServiceError(err: unknown, outcome?: CallOutcome): Partial<grpc.StatusObject> & { code: grpc.status; details: string; message: string } {
  let f = toGrpcFailure(err);
  const details = outcome === undefined ? null : statusDetailsOf(f.metadata);
  if (outcome !== undefined && details !== null && details.outcome !== outcome) f = statusFailure(f.code, f.details, { ...details, outcome });
  return { code: f.code, details: f.details, message: f.details, metadata: f.metadata };
}

/** A failure that is a gRPC status already (a relayed call's), to be passed on as it is. */
export function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as Partial<grpc.ServiceError>).code === "number" && "metadata" in err;
}
