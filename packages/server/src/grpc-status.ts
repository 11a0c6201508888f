// The one place where every failure becomes a gRPC status, with a message a person can act on.
import * as grpc from "@grpc/grpc-js";
import type { BrokerError, BrokerErrorCode } from "@raftmq/broker";
import { NotLeaderError, ProposalDroppedError, RaftInvariantError } from "@raftmq/raft";
import { CorruptionError, StorageFailedError } from "@raftmq/storage";
import {
  CommandFailedError,
  InvalidRequestError,
  NodeStoppingError,
  NodeUnavailableError,
  OutcomeUnknownError,
  OverloadedError,
  UnauthenticatedError,
  AccessDeniedError,
} from "./node-errors.ts";

export const LEADER_METADATA_KEY = "raftmq-leader";
export const FORWARDED_METADATA_KEY = "raftmq-forwarded";
/**
 * Whether a failed call changed anything: "not-applied" when nothing it asked for was proposed (or
 * a command was applied as a failure that changes nothing), "unknown" when it may have been
 * applied. A client resending a publish marks the resend `retry` unless every earlier attempt was
 * answered "not-applied".
 */
export const OUTCOME_METADATA_KEY = "raftmq-outcome";
export type CallOutcome = "not-applied" | "unknown";

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

function failure(code: grpc.status, details: string, outcome: CallOutcome | null, leader = ""): GrpcFailure {
  const metadata = new grpc.Metadata();
  if (leader !== "") metadata.set(LEADER_METADATA_KEY, leader);
  if (outcome !== null) metadata.set(OUTCOME_METADATA_KEY, outcome);
  return { code, details: statusDetails(details), metadata };
}

export function fromBrokerError(error: BrokerError): GrpcFailure {
  return failure(brokerErrorStatus(error.code), error.message, error.code === "OUTCOME_UNKNOWN" ? "unknown" : "not-applied");
}

/** Maps any error thrown on the request path; unknown errors become INTERNAL. */
export function toGrpcFailure(err: unknown): GrpcFailure {
  if (err instanceof CommandFailedError) return fromBrokerError(err.error);
  if (err instanceof InvalidRequestError) return failure(grpc.status.INVALID_ARGUMENT, err.message, "not-applied");
  if (err instanceof UnauthenticatedError) return failure(grpc.status.UNAUTHENTICATED, err.message, "not-applied");
  if (err instanceof AccessDeniedError) return failure(grpc.status.PERMISSION_DENIED, err.message, "not-applied");
  if (err instanceof NodeUnavailableError) {
    const hint = err.leaderClientAddress === "" ? "retry shortly" : `retry, or call the leader at ${err.leaderClientAddress}`;
    return failure(grpc.status.UNAVAILABLE, `${err.message}; ${hint}`, "not-applied", err.leaderClientAddress);
  }
  if (err instanceof OutcomeUnknownError) return failure(grpc.status.UNAVAILABLE, err.message, "unknown");
  if (err instanceof OverloadedError) return failure(grpc.status.RESOURCE_EXHAUSTED, err.message, "not-applied");
  if (err instanceof NodeStoppingError) return failure(grpc.status.UNAVAILABLE, `${err.message}; retry on another node`, "unknown");
  if (err instanceof NotLeaderError) return failure(grpc.status.UNAVAILABLE, `${err.message}; retry shortly`, "not-applied");
  if (err instanceof ProposalDroppedError) {
    switch (err.reason) {
      case "too-large":
        return failure(grpc.status.INVALID_ARGUMENT, `${err.message}: send fewer or smaller messages per call`, "not-applied");
      case "invalid-conf-change":
      case "conf-change-pending":
      case "not-a-member":
        return failure(grpc.status.FAILED_PRECONDITION, err.message, "not-applied");
      case "uncommitted-limit":
      case "leadership-transfer":
        return failure(grpc.status.UNAVAILABLE, `${err.message}; retry shortly`, "not-applied");
      default: {
        const never: never = err.reason;
        return failure(grpc.status.INTERNAL, String(never), null);
      }
    }
  }
  if (err instanceof StorageFailedError || err instanceof CorruptionError) {
    return failure(grpc.status.UNAVAILABLE, `this node's storage failed (${err.message}); call another node`, "unknown");
  }
  if (err instanceof RaftInvariantError) return failure(grpc.status.INTERNAL, `${err.message}; the node is stopping`, "unknown");
  const message = err instanceof Error ? err.message : String(err);
  return failure(grpc.status.INTERNAL, `internal error: ${message}`, null);
}

/** The shape grpc-js accepts as a call's error. */
export function toServiceError(err: unknown): Partial<grpc.StatusObject> & { code: grpc.status; details: string; message: string } {
  const f = toGrpcFailure(err);
  return { code: f.code, details: f.details, message: f.details, metadata: f.metadata };
}

/** A failure that is a gRPC status already (a relayed call's), to be passed on as it is. */
export function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as Partial<grpc.ServiceError>).code === "number" && "metadata" in err;
}
