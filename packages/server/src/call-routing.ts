// Where a client call runs: writes need the leader (a follower forwards them there), and a
// command proposed on the leader is answered once applied.
import type * as grpc from "@grpc/grpc-js";
import type { CommandResult } from "@raftmq/broker";
import type { raftmq } from "@raftmq/proto";
import { FORWARDED_METADATA_KEY, isServiceError, toServiceError } from "./grpc-status.ts";
import type { LeaderForwarder } from "./leader-forwarder.ts";
import { NodeUnavailableError } from "./node-errors.ts";
import type { RaftDriver } from "./raft-driver.ts";

type Route = { local: true } | { local: false; address: string };

/** Where a write must run: here (this node leads) or at the leader's peer address. */
export async function routeWrite(ctx: { driver: RaftDriver; leaderWaitMs: number }, metadata: grpc.Metadata): Promise<Route> {
  const { driver } = ctx;
  if (driver.isLeader) return { local: true };
  if (metadata.get(FORWARDED_METADATA_KEY).length > 0) {
    throw new NodeUnavailableError("a forwarded call reached a node that is not the leader (leadership is moving)", driver.leaderClientAddress());
  }
  if (driver.leaderId === 0) await driver.waitForLeader(ctx.leaderWaitMs);
  if (driver.isLeader) return { local: true };
  const address = driver.leaderPeerAddress();
  if (address === "") throw new NodeUnavailableError("no leader is known (an election may be in progress)");
  return { local: false, address };
}

/** Proposes commands and resolves to their results, in order; rejects on the first failure. */
export function propose(driver: RaftDriver, commands: readonly raftmq.v1.Command.$Properties[]): Promise<CommandResult[]> {
  return new Promise((resolve, reject) => {
    const results: CommandResult[] = new Array(commands.length);
    let left = commands.length;
    let failed = false;
    driver.submit(commands, (i, outcome) => {
      if (failed) return;
      if (!outcome.ok) {
        failed = true;
        reject(outcome.error);
        return;
      }
      results[i] = outcome.result;
      if (--left === 0) resolve(results);
    });
  });
}

/**
 * A unary write handler: `local` runs here when this node leads; a follower relays the call to
 * the leader and relays its answer, status included.
 */
export function leaderUnary<Q>(
  ctx: { driver: RaftDriver; forwarder: LeaderForwarder; leaderWaitMs: number },
  method: grpc.MethodDefinition<unknown, unknown>,
  local: (request: Q, call: grpc.ServerUnaryCall<Q, unknown>) => Promise<unknown>,
): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    routeWrite(ctx, call.metadata)
      .then((route) => (route.local ? local(call.request as Q, call as grpc.ServerUnaryCall<Q, unknown>) : ctx.forwarder.unary(route.address, method, call.request, call.metadata, call.getDeadline())))
      .then(
        (response) => callback(null, response),
        (err: unknown) => callback(isServiceError(err) ? err : toServiceError(err)),
      );
  };
}

/** A unary read handler: answered from this node's state once a linearizable read says it is current. */
export function linearizableUnary<Q>(driver: RaftDriver, local: (request: Q, call: grpc.ServerUnaryCall<Q, unknown>) => unknown): grpc.handleUnaryCall<Q, unknown> {
  return (call, callback) => {
    driver.linearizableRead().then(
      () => {
        try {
          callback(null, local(call.request, call));
        } catch (err) {
          callback(toServiceError(err));
        }
      },
      (err: unknown) => callback(toServiceError(err)),
    );
  };
}
