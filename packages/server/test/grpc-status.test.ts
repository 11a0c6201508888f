import * as grpc from "@grpc/grpc-js";
import { NotLeaderError, ProposalDroppedError } from "@raftmq/raft";
import { StorageFailedError } from "@raftmq/storage";
import { describe, expect, it } from "vitest";
import { LEADER_METADATA_KEY, MAX_STATUS_DETAILS_CHARS, OUTCOME_METADATA_KEY, toGrpcFailure } from "../src/grpc-status.ts";
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

  it("says in a trailer whether the failed call may have been applied", () => {
    const cases: [unknown, string[]][] = [
      [new NodeUnavailableError("no leader is known"), ["not-applied"]],
      [new NodeUnavailableError("not the leader", "10.0.0.1:7600"), ["not-applied"]],
      [new NotLeaderError(2), ["not-applied"]],
      [new InvalidRequestError("bad"), ["not-applied"]],
      [new OverloadedError("full"), ["not-applied"]],
      [new UnauthenticatedError("who"), ["not-applied"]],
      [new AccessDeniedError("no"), ["not-applied"]],
      [new ProposalDroppedError("too-large"), ["not-applied"]],
      [new ProposalDroppedError("uncommitted-limit"), ["not-applied"]],
      [new CommandFailedError({ code: "NOT_FOUND", message: "no queue" }), ["not-applied"]],
      [new CommandFailedError({ code: "OUTCOME_UNKNOWN", message: "forgotten" }), ["unknown"]],
      [new OutcomeUnknownError("leadership changed"), ["unknown"]],
      [new NodeStoppingError(), ["unknown"]],
      [new StorageFailedError("/data", "disk full"), ["unknown"]],
      [new Error("boom"), []],
    ];
    for (const [err, outcome] of cases) expect([String(err), toGrpcFailure(err).metadata.get(OUTCOME_METADATA_KEY)]).toEqual([String(err), outcome]);
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
