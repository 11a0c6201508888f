// Users and their permissions per virtual host (RabbitMQ's configure / write / read model), as
// replicated state. The state machine stores and answers; the node authenticates and authorizes.
// Adding and deleting vhosts touches exchanges and queues too, so it lives in broker.ts.
import type { raftmq } from "@raftmq/proto";
import { notFound, preconditionFailed, resourceExhausted } from "./broker-error.ts";
import type { BrokerState } from "./broker-state.ts";
import type { CommandResult } from "./command-result.ts";
import { accessLimits } from "./limits.ts";

export interface User {
  readonly name: string;
  /** Opaque: computed by the node that proposed it. "" allows no password authentication. */
  readonly passwordHash: string;
  readonly tags: readonly string[];
}

/** Regular expressions over exchange and queue names; "" matches nothing. */
export interface Permissions {
  readonly configure: string;
  readonly write: string;
  readonly read: string;
}

export interface UserPermissions extends Permissions {
  readonly user: string;
  readonly vhost: string;
}

/** Stored objects are frozen, so readers get them without a copy. */
export function frozenUser(name: string, passwordHash: string, tags: readonly string[]): User {
  return Object.freeze({ name, passwordHash, tags: Object.freeze([...tags]) });
}

export function frozenPermissions(configure: string, write: string, read: string): Permissions {
  return Object.freeze({ configure, write, read });
}

/** Code-unit order: the same on every node, whatever its locale. */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function noUser(name: string): CommandResult {
  return { ok: false, error: notFound(`no user "${name}"`) };
}

export function addUser(s: BrokerState, c: raftmq.v1.AddUser.$Properties): CommandResult {
  const name = c.name ?? "";
  // Checked first: the bootstrap administrator proposed by several nodes is added once, and the
  // later proposals succeed without it whatever their names.
  if (c.onlyIfNoUsers && s.users.size > 0) return { ok: true, kind: "addUser", created: false };
  if (s.users.has(name)) return { ok: false, error: preconditionFailed(`user "${name}" already exists`) };
  if (s.users.size >= accessLimits.maxUsers) {
    return { ok: false, error: resourceExhausted(`cannot add user "${name}": the broker holds its limit of ${accessLimits.maxUsers} users`) };
  }
  s.users.set(name, frozenUser(name, c.passwordHash ?? "", c.tags ?? []));
  s.accessVersion++;
  return { ok: true, kind: "addUser", created: true };
}

export function deleteUser(s: BrokerState, name: string): CommandResult {
  if (!s.users.delete(name)) return noUser(name);
  s.permissions.delete(name);
  s.accessVersion++;
  return { ok: true, kind: "deleteUser" };
}

export function setPasswordHash(s: BrokerState, name: string, passwordHash: string): CommandResult {
  const u = s.users.get(name);
  if (u === undefined) return noUser(name);
  s.users.set(name, frozenUser(name, passwordHash, u.tags));
  s.accessVersion++;
  return { ok: true, kind: "setPasswordHash" };
}

export function setUserTags(s: BrokerState, name: string, tags: readonly string[]): CommandResult {
  const u = s.users.get(name);
  if (u === undefined) return noUser(name);
  s.users.set(name, frozenUser(name, u.passwordHash, tags));
  s.accessVersion++;
  return { ok: true, kind: "setUserTags" };
}

/** NOT_FOUND for a user or vhost that does not exist, else null. */
function targetError(s: BrokerState, user: string, vhost: string): CommandResult | null {
  if (!s.users.has(user)) return noUser(user);
  if (!s.vhosts.has(vhost)) return { ok: false, error: notFound(`no vhost "${vhost}"`) };
  return null;
}

export function setPermissions(s: BrokerState, c: raftmq.v1.SetPermissions.$Properties): CommandResult {
  const user = c.user ?? "";
  const vhost = c.vhost ?? "";
  const missing = targetError(s, user, vhost);
  if (missing !== null) return missing;
  let ofUser = s.permissions.get(user);
  if (ofUser === undefined) {
    ofUser = new Map();
    s.permissions.set(user, ofUser);
  }
  ofUser.set(vhost, frozenPermissions(c.configure ?? "", c.write ?? "", c.read ?? ""));
  s.accessVersion++;
  return { ok: true, kind: "setPermissions" };
}

/** Succeeds when the user has no permissions on the vhost, as long as both exist. */
export function clearPermissions(s: BrokerState, user: string, vhost: string): CommandResult {
  const missing = targetError(s, user, vhost);
  if (missing !== null) return missing;
  const ofUser = s.permissions.get(user);
  if (ofUser?.delete(vhost) === true) {
    if (ofUser.size === 0) s.permissions.delete(user);
    s.accessVersion++;
  }
  return { ok: true, kind: "clearPermissions" };
}

/** Drops every user's permissions on a vhost being deleted. */
export function forgetVhostPermissions(s: BrokerState, vhost: string): void {
  for (const [user, ofUser] of [...s.permissions]) {
    if (ofUser.delete(vhost) && ofUser.size === 0) s.permissions.delete(user);
  }
}

/** Permissions matching the filter, sorted by user, then vhost. */
export function listPermissions(s: BrokerState, filter: { user?: string; vhost?: string }): UserPermissions[] {
  const out: UserPermissions[] = [];
  for (const [user, ofUser] of s.permissions) {
    if (filter.user !== undefined && user !== filter.user) continue;
    for (const [vhost, p] of ofUser) {
      if (filter.vhost !== undefined && vhost !== filter.vhost) continue;
      out.push({ user, vhost, configure: p.configure, write: p.write, read: p.read });
    }
  }
  return out.sort((a, b) => byCodeUnits(a.user, b.user) || byCodeUnits(a.vhost, b.vhost));
}
