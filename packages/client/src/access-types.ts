// Users, virtual hosts and permissions as the SDK hands them out (the Access service's messages).
import type { raftmq } from "@raftmq/proto";

export interface UserInfo {
  name: string;
  /** "administrator", "monitoring"; other tags are kept and mean nothing to the broker. */
  tags: string[];
  /** False: the user authenticates only with a client certificate. */
  hasPassword: boolean;
}

/**
 * What a user may do in a virtual host: regular expressions (JavaScript syntax) over exchange and
 * queue names, for declaring and deleting (configure), publishing and binding to (write), and
 * consuming from and binding from (read). "" matches nothing.
 */
export interface Permissions {
  user: string;
  vhost: string;
  configure: string;
  write: string;
  read: string;
}

export interface WhoAmI {
  user: string;
  tags: string[];
  /** How the server knew the caller: "password", "certificate", or "none" (a node started with --insecure). */
  mechanism: string;
}

export function userInfoFromWire(u: raftmq.v1.UserInfo.$Properties): UserInfo {
  return { name: u.name ?? "", tags: u.tags ?? [], hasPassword: u.hasPassword ?? false };
}

export function permissionsFromWire(p: raftmq.v1.Permissions.$Properties): Permissions {
  return { user: p.user ?? "", vhost: p.vhost ?? "", configure: p.configure ?? "", write: p.write ?? "", read: p.read ?? "" };
}

export function whoAmIFromWire(w: raftmq.v1.WhoAmIResponse.$Properties): WhoAmI {
  return { user: w.user ?? "", tags: w.tags ?? [], mechanism: w.mechanism ?? "" };
}
