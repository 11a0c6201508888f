// Handlers of service Cluster: status from this node's view; membership changes and leadership
// transfer run on the leader (forwarded there); snapshots are taken by the node that is asked.
import type * as grpc from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";
import { MACHINE_VERSION, settingsToProto } from "@raftmq/broker";
import { raftmq } from "@raftmq/proto";
import { ConfChangeType } from "@raftmq/raft";
import { leaderUnary, propose } from "./call-routing.ts";
import type { CommandBuilder } from "./command-builder.ts";
import { toServiceError } from "./grpc-status.ts";
import type { LeaderForwarder } from "./leader-forwarder.ts";
import { CommandFailedError, InvalidRequestError } from "./node-errors.ts";
import type { RaftDriver } from "./raft-driver.ts";
import { clusterServiceDefinition } from "@raftmq/proto/grpc";

export interface ClusterServiceContext {
  driver: RaftDriver;
  builder: CommandBuilder;
  forwarder: LeaderForwarder;
  leaderWaitMs: number;
  version: string;
  /** Applied entries behind the commit index that still count as caught up. */
  readyLag: number;
  /** This node's own resource alarms now. */
  alarms?: () => { alarms: string[]; detail: string };
}

const HOST_PORT = /^[A-Za-z0-9.\-_:[\]]+:\d{1,5}$/;

export function nodeReady(driver: RaftDriver, readyLag: number): boolean {
  const s = driver.status();
  return driver.healthy && s.leaderId !== 0 && driver.appliedIndex + readyLag >= s.commit && s.confState.voters.includes(s.id);
}

export function membersOf(driver: RaftDriver): raftmq.v1.Member.$Properties[] {
  const status = driver.status();
  const conf = status.confState;
  const peers = driver.peerStats();
  const ids = [...new Set([...conf.voters, ...conf.learners])].sort((a, b) => a - b);
  return ids.map((id) => {
    const address = driver.address(id);
    const progress = status.progress.find((p) => p.id === id);
    const match = progress?.match ?? 0;
    return {
      id,
      peerAddress: address?.peerAddress ?? "",
      clientAddress: address?.clientAddress ?? "",
      role: conf.learners.includes(id) ? raftmq.v1.MemberRole.MEMBER_ROLE_LEARNER : raftmq.v1.MemberRole.MEMBER_ROLE_VOTER,
      leader: id === status.leaderId,
      matchIndex: match,
      lag: progress === undefined ? 0 : Math.max(0, status.lastIndex - match),
      reachable: id === status.id ? true : (peers[id]?.connected ?? false),
    };
  });
}

/**
 * The members, of `ids`, whose code cannot apply state-machine `version` (or that did not say), each
 * as a line for the operator. Such a member would stop on applying the entry that moves to it.
 */
export async function membersBehind(version: number, ids: readonly number[], maxVersionOf: (id: number) => Promise<number>): Promise<string[]> {
  const answers = await Promise.all(
    ids.map(async (id) => {
      try {
        const max = await maxVersionOf(id);
        return max >= version ? null : `node ${id} applies state-machine versions up to ${max}`;
      } catch (err) {
        return `node ${id} did not say which versions it applies (${err instanceof Error ? err.message : String(err)})`;
      }
    }),
  );
  return answers.filter((a): a is string => a !== null);
}

export function clusterHandlers(ctx: ClusterServiceContext): grpc.UntypedServiceImplementation {
  const { driver, forwarder } = ctx;
  const defs = clusterServiceDefinition;

  const write = <Q>(name: keyof typeof defs, local: (request: Q) => Promise<unknown>) =>
    leaderUnary<Q>(ctx, defs[name] as unknown as grpc.MethodDefinition<unknown, unknown>, local);

  /** Refuses to move to `version` unless every other member's code applies it. */
  async function requireMembersSupport(version: number): Promise<void> {
    const status = driver.status();
    const others = [...new Set([...status.confState.voters, ...status.confState.learners])].filter((id) => id !== status.id).sort((a, b) => a - b);
    const method = clusterServiceDefinition.Status as unknown as grpc.MethodDefinition<unknown, raftmq.v1.StatusResponse>;
    const behind = await membersBehind(version, others, async (id) => {
      const address = driver.address(id)?.peerAddress ?? "";
      if (address === "") throw new Error("its address is unknown");
      const answer = await forwarder.unary(address, method, {}, new Metadata(), Date.now() + ctx.leaderWaitMs);
      return answer.maxMachineVersion ?? 0;
    });
    if (behind.length > 0) {
      throw new CommandFailedError({ code: "PRECONDITION_FAILED", message: `cannot move to state-machine version ${version}: ${behind.join("; ")}. Upgrade those nodes first` });
    }
  }

  /** Moves leadership to `to` (0: the most caught-up other voter) and waits until it has moved. */
  function moveLeadership(to: number): Promise<number> {
    return driver.transferLeadership(to, 2 * ctx.leaderWaitMs);
  }

  return {
    Status: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      try {
        const s = driver.status();
        callback(null, {
          nodeId: s.id,
          role: s.role,
          term: s.term,
          leaderId: s.leaderId,
          leaderClientAddress: driver.leaderClientAddress(),
          commitIndex: s.commit,
          appliedIndex: driver.appliedIndex,
          lastIndex: s.lastIndex,
          snapshotIndex: driver.snapshotIndex,
          members: membersOf(driver),
          ready: nodeReady(driver, ctx.readyLag),
          version: ctx.version,
          settings: settingsToProto(driver.broker.settings()),
          machineVersion: driver.broker.machineVersion(),
          maxMachineVersion: MACHINE_VERSION,
          alarms: ctx.alarms?.().alarms ?? [],
          alarmDetail: ctx.alarms?.().detail ?? "",
        } satisfies raftmq.v1.StatusResponse.$Properties);
      } catch (err) {
        callback(toServiceError(err));
      }
    },
    AddMember: write<raftmq.v1.AddMemberRequest>("AddMember", async (r) => {
      const id = Number(r.id ?? 0);
      const peerAddress = r.peerAddress ?? "";
      const clientAddress = r.clientAddress ?? "";
      if (!(Number.isSafeInteger(id) && id > 0)) throw new InvalidRequestError("AddMember needs a positive node id");
      if (!HOST_PORT.test(peerAddress)) throw new InvalidRequestError(`peer_address ${JSON.stringify(peerAddress)} must be host:port`);
      if (!HOST_PORT.test(clientAddress)) throw new InvalidRequestError(`client_address ${JSON.stringify(clientAddress)} must be host:port`);
      await driver.changeMembership(ConfChangeType.CONF_CHANGE_TYPE_ADD_LEARNER, id, { id, peerAddress, clientAddress });
      return { members: membersOf(driver) };
    }),
    RemoveMember: write<raftmq.v1.RemoveMemberRequest>("RemoveMember", async (r) => {
      const id = Number(r.id ?? 0);
      if (!(Number.isSafeInteger(id) && id > 0)) throw new InvalidRequestError("RemoveMember needs a positive node id");
      if (id === driver.status().id) {
        // A leader that commits its own removal stops at once, and a remaining voter may never
        // learn of that commit: with two voters left, the survivor then waits forever for the
        // removed node's vote. So the leader hands leadership away first, and the new leader
        // removes it.
        await moveLeadership(0);
        const method = clusterServiceDefinition.RemoveMember as unknown as grpc.MethodDefinition<unknown, raftmq.v1.RemoveMemberResponse>;
        return forwarder.unary(driver.leaderPeerAddress(), method, r, new Metadata());
      }
      await driver.changeMembership(ConfChangeType.CONF_CHANGE_TYPE_REMOVE_NODE, id, null);
      return { members: membersOf(driver) };
    }),
    TransferLeadership: write<raftmq.v1.TransferLeadershipRequest>("TransferLeadership", async (r) => ({
      leaderId: await moveLeadership(Number(r.to ?? 0)),
    })),
    SetSettings: write<raftmq.v1.SetSettingsRequest>("SetSettings", async (r) => {
      const command = ctx.builder.setClusterSettings(r);
      const version = r.machineVersion ?? 0;
      if (version > driver.broker.machineVersion()) await requireMembersSupport(version);
      const [result] = await propose(driver, [command]);
      if (result === undefined) throw new Error("no result for a setClusterSettings command");
      if (!result.ok) throw new CommandFailedError(result.error);
      if (result.kind !== "setClusterSettings") throw new Error(`a setClusterSettings command answered a ${result.kind} result`);
      return { machineVersion: result.machineVersion, settings: settingsToProto(result.settings) } satisfies raftmq.v1.SetSettingsResponse.$Properties;
    }),
    TriggerSnapshot: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      driver.triggerSnapshot().then(
        (index) => callback(null, { index }),
        (err: unknown) => callback(toServiceError(err)),
      );
    },
  };
}
