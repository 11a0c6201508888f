// The structured part of every error status: a google.rpc.Status in the trailer
// grpc-status-details-bin, with an ErrorInfo of domain "raftmq.io" that says why (reason) and
// whether the failed call changed anything (outcome), and a RetryInfo when retrying shortly can
// help. Standard gRPC clients decode it (grpcio-status, grpc-go's status.Details()).
import type * as grpc from "@grpc/grpc-js";
import { google } from "../gen/google-rpc.js";

export const STATUS_DETAILS_METADATA_KEY = "grpc-status-details-bin";
export const ERROR_DOMAIN = "raftmq.io";
const ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo";
const RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo";

/**
 * What a failed call did. `refused`: the request was refused and changed nothing; sending it
 * again as it is fails again (bad input, no permission, a broker rule). `not_applied`: nothing it
 * asked for was proposed, for a reason that passes (no leader, not the leader, overloaded); sending
 * it again is not a retry. `unknown`: it may have been applied (leadership changed after it was
 * proposed, the node stopped); a publish sent again is a retry.
 */
export type CallOutcome = "not_applied" | "refused" | "unknown";

export interface ErrorDetails {
  /** UPPER_SNAKE_CASE, stable: NOT_LEADER, NO_LEADER, OUTCOME_UNKNOWN, NOT_FOUND, … */
  reason: string;
  outcome: CallOutcome;
  /** The leader's client address, when the node knows it. */
  leader?: string;
  /** How long to wait before retrying, when retrying can help. */
  retryDelayMs?: number;
}

/** The google.rpc.Status bytes of an error status. */
export function encodeStatusDetails(code: number, message: string, details: ErrorDetails): Buffer {
  const metadata: Record<string, string> = { outcome: details.outcome };
  if (details.leader !== undefined && details.leader !== "") metadata.leader = details.leader;
  const any: google.protobuf.Any.$Properties[] = [
    { type_url: ERROR_INFO_TYPE, value: google.rpc.ErrorInfo.encode({ reason: details.reason, domain: ERROR_DOMAIN, metadata }).finish() },
  ];
  if (details.retryDelayMs !== undefined) {
    const ms = Math.max(0, Math.round(details.retryDelayMs));
    const retryDelay = { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
    any.push({ type_url: RETRY_INFO_TYPE, value: google.rpc.RetryInfo.encode({ retryDelay }).finish() });
  }
  return Buffer.from(google.rpc.Status.encode({ code, message, details: any }).finish());
}

function isOutcome(value: string | undefined): value is CallOutcome {
  return value === "not_applied" || value === "refused" || value === "unknown";
}

/** The raftmq details of a google.rpc.Status, or null when it carries none (or is not one). */
export function decodeStatusDetails(bytes: Uint8Array): ErrorDetails | null {
  let status: google.rpc.Status;
  try {
    status = google.rpc.Status.decode(bytes);
  } catch {
    return null;
  }
  let found: ErrorDetails | null = null;
  let retryDelayMs: number | undefined;
  for (const d of status.details) {
    try {
      if (d.type_url === ERROR_INFO_TYPE) {
        const info = google.rpc.ErrorInfo.decode(d.value ?? new Uint8Array());
        const outcome = info.metadata.outcome;
        if (info.domain !== ERROR_DOMAIN || !isOutcome(outcome)) continue;
        found = { reason: info.reason, outcome };
        if (info.metadata.leader !== undefined) found.leader = info.metadata.leader;
      } else if (d.type_url === RETRY_INFO_TYPE) {
        const delay = google.rpc.RetryInfo.decode(d.value ?? new Uint8Array()).retryDelay;
        if (delay != null) retryDelayMs = Number(delay.seconds ?? 0) * 1000 + Math.round((delay.nanos ?? 0) / 1_000_000);
      }
    } catch {
      // A detail that does not decode is skipped, as an unknown one is.
    }
  }
  if (found !== null && retryDelayMs !== undefined) found.retryDelayMs = retryDelayMs;
  return found;
}

/** The raftmq details of a status's trailers, or null (a status of grpc-js or of a transport, not of a node). */
export function statusDetailsOf(metadata: grpc.Metadata | undefined): ErrorDetails | null {
  const bytes = metadata?.get(STATUS_DETAILS_METADATA_KEY)[0];
  return bytes instanceof Uint8Array ? decodeStatusDetails(bytes) : null;
}

/** Consume call metadata asking for heartbeats at this interval, in milliseconds. */
export const HEARTBEAT_METADATA_KEY = "raftmq-heartbeat-ms";
export const MIN_HEARTBEAT_MS = 100;
export const MAX_HEARTBEAT_MS = 60_000;
