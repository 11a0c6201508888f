// Where a client call runs: writes need the leader (a follower forwards them there), and a
// command proposed on the leader is answered once applied.
import type * as grpc from "@grpc/grpc-js";
import type { CommandResult } from "@raftmq/broker";
import type { raftmq } from "@raftmq/proto";
import { FORWARDED_METADATA_KEY } from "./grpc-status.ts";
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
