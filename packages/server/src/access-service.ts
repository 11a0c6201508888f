// Handlers of service Access: users, vhosts and permissions. Changes are commands through the
// log, run on the leader (forwarded there); a password is hashed here, before the command is
// built, so no password enters the log, a snapshot or a log line. Reads are linearizable.
import type * as grpc from "@grpc/grpc-js";
import type { CommandResult } from "@raftmq/broker";
import type { raftmq } from "@raftmq/proto";
import { accessServiceDefinition } from "@raftmq/proto/grpc";
import { hashPassword } from "./access/password-hash.ts";
import { leaderUnary, linearizableUnary, propose } from "./call-routing.ts";
import type { CommandBuilder } from "./command-builder.ts";
import type { LeaderForwarder } from "./leader-forwarder.ts";
import { CommandFailedError, InvalidRequestError } from "./node-errors.ts";
import type { RaftDriver } from "./raft-driver.ts";
import { callAccess } from "./security/access-gate.ts";

type Command = raftmq.v1.Command.$Properties;

export interface AccessServiceContext {
  driver: RaftDriver;
  /** Checks each command (fields, and the state-machine version in force) before it is proposed. */
  builder: CommandBuilder;
  forwarder: LeaderForwarder;
  leaderWaitMs: number;
}

/** Longest password accepted (scrypt takes any length; this bounds the work per call). */
export const MAX_PASSWORD_BYTES = 1024;

async function passwordHash(password: string): Promise<string> {
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) throw new InvalidRequestError(`a password is at most ${MAX_PASSWORD_BYTES} bytes`);
  return password === "" ? "" : await hashPassword(password);
}

async function run(ctx: AccessServiceContext, command: Command): Promise<CommandResult> {
  const [result] = await propose(ctx.driver, [ctx.builder.checked(command)]);
  if (result === undefined) throw new Error("no result for an access command");
  if (!result.ok) throw new CommandFailedError(result.error);
  return result;
}

export function accessHandlers(ctx: AccessServiceContext): grpc.UntypedServiceImplementation {
  const { driver } = ctx;
  const defs = accessServiceDefinition;

  const write = <Q>(name: keyof typeof defs, local: (request: Q) => Promise<unknown>) =>
    leaderUnary<Q>(ctx, defs[name] as unknown as grpc.MethodDefinition<unknown, unknown>, local);
  const read = <Q>(local: (request: Q) => unknown) => linearizableUnary<Q>(driver, local);

  const broker = () => driver.broker;

  return {
    AddUser: write<raftmq.v1.AddUserRequest>("AddUser", async (r) => {
      await run(ctx, { addUser: { name: r.name ?? "", passwordHash: await passwordHash(r.password ?? ""), tags: r.tags ?? [], onlyIfNoUsers: false } });
      return {};
    }),
    DeleteUser: write<raftmq.v1.DeleteUserRequest>("DeleteUser", async (r) => {
      await run(ctx, { deleteUser: { name: r.name ?? "" } });
      return {};
    }),
    ChangePassword: write<raftmq.v1.ChangePasswordRequest>("ChangePassword", async (r) => {
      await run(ctx, { setPasswordHash: { name: r.name ?? "", passwordHash: await passwordHash(r.password ?? "") } });
      return {};
    }),
    SetUserTags: write<raftmq.v1.SetUserTagsRequest>("SetUserTags", async (r) => {
      await run(ctx, { setUserTags: { name: r.name ?? "", tags: r.tags ?? [] } });
      return {};
    }),
    AddVhost: write<raftmq.v1.AddVhostRequest>("AddVhost", async (r) => {
      await run(ctx, { addVhost: { name: r.name ?? "" } });
      return {};
    }),
    DeleteVhost: write<raftmq.v1.DeleteVhostRequest>("DeleteVhost", async (r) => {
      await run(ctx, { deleteVhost: { name: r.name ?? "" } });
      return {};
    }),
    SetPermissions: write<raftmq.v1.SetPermissionsRequest>("SetPermissions", async (r) => {
      const p = r.permissions;
      if (p == null) throw new InvalidRequestError("SetPermissions needs permissions");
      await run(ctx, { setPermissions: { user: p.user ?? "", vhost: p.vhost || "/", configure: p.configure ?? "", write: p.write ?? "", read: p.read ?? "" } });
      return {};
    }),
    ClearPermissions: write<raftmq.v1.ClearPermissionsRequest>("ClearPermissions", async (r) => {
      await run(ctx, { clearPermissions: { user: r.user ?? "", vhost: r.vhost || "/" } });
      return {};
    }),
    ListUsers: read<raftmq.v1.ListUsersRequest>(() => ({
      users: broker()
        .users()
        .map((u) => ({ name: u.name, tags: [...u.tags], hasPassword: u.passwordHash !== "" })),
    })),
    ListVhosts: read<raftmq.v1.ListVhostsRequest>(() => ({ names: broker().vhosts() })),
    ListPermissions: read<raftmq.v1.ListPermissionsRequest>((r) => ({
      permissions: broker().listPermissions({ ...(r.user ? { user: r.user } : {}), ...(r.vhost ? { vhost: r.vhost } : {}) }),
    })),
    WhoAmI: (call: grpc.ServerUnaryCall<raftmq.v1.WhoAmIRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const access = callAccess(call);
      callback(null, { user: access.user, tags: [...access.tags], mechanism: access.mechanism === "node" ? "certificate" : access.mechanism });
    },
  };
}

