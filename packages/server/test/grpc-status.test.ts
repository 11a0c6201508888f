import * as grpc from "@grpc/grpc-js";
import { NotLeaderError, ProposalDroppedError } from "@raftmq/raft";
import { StorageFailedError } from "@raftmq/storage";
import { describe, expect, it } from "vitest";
import { type ErrorDetails, google, STATUS_DETAILS_METADATA_KEY, statusDetailsOf } from "@raftmq/proto";
import { LEADER_METADATA_KEY, MAX_STATUS_DETAILS_CHARS, toGrpcFailure } from "../src/grpc-status.ts";
import { AccessDeniedError, CommandFailedError, InvalidRequestError, NodeStoppingError, NodeUnavailableError, OutcomeUnknownError, OverloadedError, UnauthenticatedError } from "../src/node-errors.ts";

describe("gRPC status mapping", () => {
  it("maps each broker error code to its status", () => {
    const cases = [
      ["INVALID_ARGUMENT", grpc.status.INVALID_ARGUMENT],
      ["NOT_FOUND", grpc.status.NOT_FOUND],
      ["PRECONDITION_FAILED", grpc.status.FAILED_PRECONDITION],
      ["RESOURCE_EXHAUSTED", grpc.status.RESOURCE_EXHAUSTED],
    ] as const;
    for (const [code, status] of cases) {
      const f = toGrpcFailure(new CommandFailedError({ code, message: `because ${code}` }));
      expect([f.code, f.details]).toEqual([status, `because ${code}`]);
    }
  });

  it("answers UNAVAILABLE with the leader's address in trailing metadata when known", () => {
    const f = toGrpcFailure(new NodeUnavailableError("not the leader", "10.0.0.1:7600"));
    expect(f.code).toBe(grpc.status.UNAVAILABLE);
    expect(f.details).toContain("10.0.0.1:7600");
    expect(f.metadata.get(LEADER_METADATA_KEY)).toEqual(["10.0.0.1:7600"]);
    const unknown = toGrpcFailure(new NodeUnavailableError("no leader is known"));
    expect(unknown.metadata.get(LEADER_METADATA_KEY)).toEqual([]);
    expect(unknown.details).toContain("retry");
  });

  it("maps the node's and the core's other errors", () => {
    expect(toGrpcFailure(new InvalidRequestError("bad")).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(toGrpcFailure(new OverloadedError("full")).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(toGrpcFailure(new OutcomeUnknownError("lost")).details).toMatch(/retry with the same producer id and sequence/);
    expect(toGrpcFailure(new NotLeaderError(2)).code).toBe(grpc.status.UNAVAILABLE);
    expect(toGrpcFailure(new ProposalDroppedError("too-large")).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(toGrpcFailure(new ProposalDroppedError("invalid-conf-change", "node 4 is not a member")).code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(toGrpcFailure(new StorageFailedError("/data", "disk full")).code).toBe(grpc.status.UNAVAILABLE);
    expect(toGrpcFailure(new Error("boom"))).toMatchObject({ code: grpc.status.INTERNAL, details: "internal error: boom" });
  });

  it("gives every failure structured details: a reason, what the call did, the leader and a retry delay where they apply", () => {
    const cases: [unknown, ErrorDetails][] = [
      [new NodeUnavailableError("no leader is known"), { reason: "NO_LEADER", outcome: "not_applied", retryDelayMs: 100 }],
      [new NodeUnavailableError("not the leader", "10.0.0.1:7600"), { reason: "NOT_LEADER", outcome: "not_applied", leader: "10.0.0.1:7600" }],
      [new NotLeaderError(2), { reason: "NOT_LEADER", outcome: "not_applied", retryDelayMs: 100 }],
      [new InvalidRequestError("bad"), { reason: "INVALID_REQUEST", outcome: "refused" }],
      [new OverloadedError("full"), { reason: "OVERLOADED", outcome: "not_applied", retryDelayMs: 100 }],
      [new UnauthenticatedError("who"), { reason: "UNAUTHENTICATED", outcome: "refused" }],
      [new AccessDeniedError("no"), { reason: "PERMISSION_DENIED", outcome: "refused" }],
      [new ProposalDroppedError("too-large"), { reason: "PROPOSAL_TOO_LARGE", outcome: "refused" }],
      [new ProposalDroppedError("uncommitted-limit"), { reason: "PROPOSAL_DROPPED", outcome: "not_applied", retryDelayMs: 100 }],
      [new ProposalDroppedError("not-a-member"), { reason: "MEMBERSHIP_CHANGE_REFUSED", outcome: "refused" }],
      [new CommandFailedError({ code: "NOT_FOUND", message: "no queue" }), { reason: "NOT_FOUND", outcome: "refused" }],
      [new CommandFailedError({ code: "PRECONDITION_FAILED", message: "in use" }), { reason: "PRECONDITION_FAILED", outcome: "refused" }],
      [new CommandFailedError({ code: "OUTCOME_UNKNOWN", message: "forgotten" }), { reason: "OUTCOME_UNKNOWN", outcome: "unknown" }],
      [new OutcomeUnknownError("leadership changed"), { reason: "OUTCOME_UNKNOWN", outcome: "unknown", retryDelayMs: 100 }],
      [new NodeStoppingError(), { reason: "NODE_STOPPING", outcome: "unknown" }],
      [new StorageFailedError("/data", "disk full"), { reason: "STORAGE_FAILED", outcome: "unknown" }],
      [new Error("boom"), { reason: "INTERNAL", outcome: "unknown" }],
    ];
    for (const [err, details] of cases) {
      const f = toGrpcFailure(err);
      expect([String(err), statusDetailsOf(f.metadata)]).toEqual([String(err), details]);
      // The Status inside names the same code and message as the status itself.
      const status = google.rpc.Status.decode(f.metadata.get(STATUS_DETAILS_METADATA_KEY)[0] as Buffer);
      expect([status.code, status.message]).toEqual([f.code, f.details]);
    }
  });

  it("cuts a long message, which would not fit the trailers, and never inside a surrogate pair", () => {
    const long = toGrpcFailure(new InvalidRequestError(`queue "${"é".repeat(200_000)}" refused`)).details;
    expect(long.length).toBeLessThan(MAX_STATUS_DETAILS_CHARS + 40);
    expect(long).toMatch(/… \(\d+ more characters\)$/);
    const emoji = toGrpcFailure(new InvalidRequestError(`x${"😀".repeat(MAX_STATUS_DETAILS_CHARS)}`)).details;
    expect(emoji.startsWith(`x${"😀".repeat(MAX_STATUS_DETAILS_CHARS / 2 - 1)}…`)).toBe(true);
    expect(() => encodeURI(emoji)).not.toThrow();
    expect(toGrpcFailure(new InvalidRequestError("short")).details).toBe("short");
  });
});
