// An AccessView a test edits directly: the replicated access state without the state machine.
import type { AccessView, PermissionRecord, UserRecord } from "../../src/access/access-view.ts";

export class FakeAccessView implements AccessView {
  readonly users = new Map<string, UserRecord>();
  readonly vhosts = new Set<string>(["/"]);
  readonly perms = new Map<string, PermissionRecord>();
  accessVersion = 0;

  get userCount(): number {
    return this.users.size;
  }

  user(name: string): UserRecord | undefined {
    return this.users.get(name);
  }

  permissions(user: string, vhost: string): PermissionRecord | undefined {
    return this.perms.get(`${user}\u0000${vhost}`);
  }

  hasVhost(name: string): boolean {
    return this.vhosts.has(name);
  }

  addUser(name: string, passwordHash: string, tags: string[] = []): this {
    this.users.set(name, { name, passwordHash, tags });
    this.accessVersion++;
    return this;
  }

  deleteUser(name: string): this {
    this.users.delete(name);
    this.accessVersion++;
    return this;
  }

  addVhost(name: string): this {
    this.vhosts.add(name);
    this.accessVersion++;
    return this;
  }

  setPermissions(user: string, vhost: string, p: PermissionRecord): this {
    this.perms.set(`${user}\u0000${vhost}`, p);
    this.accessVersion++;
    return this;
  }
}

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
}
