// The replicated access state (users, vhosts, permissions) as the security modules read it. The
// broker state machine implements it; nothing here writes to it.

export interface UserRecord {
  name: string;
  /** A password-hash.ts encoding, or "" when the user may not log in with a password. */
  passwordHash: string;
  tags: readonly string[];
}

/** Regular expressions over exchange and queue names; "" matches nothing. */
export interface PermissionRecord {
  configure: string;
  write: string;
  read: string;
}

export interface AccessView {
  user(name: string): UserRecord | undefined;
  permissions(user: string, vhost: string): PermissionRecord | undefined;
  hasVhost(name: string): boolean;
  /** Increments on every applied change to users, vhosts or permissions. */
  readonly accessVersion: number;
  /** Users this node has applied; 0 on a node still starting or catching up, or before the bootstrap. */
  readonly userCount: number;
}
