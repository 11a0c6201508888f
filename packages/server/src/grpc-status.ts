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

function failure(code: grpc.status, details: string, leader = ""): GrpcFailure {
  const metadata = new grpc.Metadata();
  if (leader !== "") metadata.set(LEADER_METADATA_KEY, leader);
  return { code, details: statusDetails(details), metadata };
}

export function fromBrokerError(error: BrokerError): GrpcFailure {
  return failure(brokerErrorStatus(error.code), error.message);
}

/** Maps any error thrown on the request path; unknown errors become INTERNAL. */
export function toGrpcFailure(err: unknown): GrpcFailure {
  if (err instanceof CommandFailedError) return fromBrokerError(err.error);
  if (err instanceof InvalidRequestError) return failure(grpc.status.INVALID_ARGUMENT, err.message);
  if (err instanceof UnauthenticatedError) return failure(grpc.status.UNAUTHENTICATED, err.message);
  if (err instanceof AccessDeniedError) return failure(grpc.status.PERMISSION_DENIED, err.message);
  if (err instanceof NodeUnavailableError) {
    const hint = err.leaderClientAddress === "" ? "retry shortly" : `retry, or call the leader at ${err.leaderClientAddress}`;
    return failure(grpc.status.UNAVAILABLE, `${err.message}; ${hint}`, err.leaderClientAddress);
  }
  if (err instanceof OutcomeUnknownError) return failure(grpc.status.UNAVAILABLE, err.message);
  if (err instanceof OverloadedError) return failure(grpc.status.RESOURCE_EXHAUSTED, err.message);
  if (err instanceof NodeStoppingError) return failure(grpc.status.UNAVAILABLE, `${err.message}; retry on another node`);
  if (err instanceof NotLeaderError) return failure(grpc.status.UNAVAILABLE, `${err.message}; retry shortly`);
  if (err instanceof ProposalDroppedError) {
    switch (err.reason) {
      case "too-large":
        return failure(grpc.status.INVALID_ARGUMENT, `${err.message}: send fewer or smaller messages per call`);
      case "invalid-conf-change":
      case "conf-change-pending":
      case "not-a-member":
        return failure(grpc.status.FAILED_PRECONDITION, err.message);
      case "uncommitted-limit":
      case "leadership-transfer":
        return failure(grpc.status.UNAVAILABLE, `${err.message}; retry shortly`);
      default: {
        const never: never = err.reason;
        return failure(grpc.status.INTERNAL, String(never));
      }
    }
  }
  if (err instanceof StorageFailedError || err instanceof CorruptionError) {
    return failure(grpc.status.UNAVAILABLE, `this node's storage failed (${err.message}); call another node`);
  }
  if (err instanceof RaftInvariantError) return failure(grpc.status.INTERNAL, `${err.message}; the node is stopping`);
  const message = err instanceof Error ? err.message : String(err);
  return failure(grpc.status.INTERNAL, `internal error: ${message}`);
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
