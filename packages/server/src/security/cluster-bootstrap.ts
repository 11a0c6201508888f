// What a leader sets up in a cluster that lacks it: the newest state-machine version, once every
// member's code applies it (as Ra's leaders do), and the bootstrap administrator of a cluster
// without users. Both are ordinary commands through the log; the administrator's password is
// hashed here, so only its hash is proposed. Several nodes may try at once: the user is created
// only if no user exists, whichever node's command is applied first.
import { ACCESS_CONTROL_VERSION, MACHINE_VERSION, settingsToProto } from "@raftmq/broker";
import type { raftmq } from "@raftmq/proto";
import type { Logger } from "pino";
import { hashPassword } from "../access/password-hash.ts";
import { propose } from "../call-routing.ts";
import type { RaftDriver } from "../raft-driver.ts";

export interface BootstrapAdmin {
  user: string;
  password: string;
}

export interface ClusterBootstrapOptions {
  driver: RaftDriver;
  log: Logger;
  admin: BootstrapAdmin | null;
  /** The highest state-machine version member `id`'s code applies (asked over the peer port). */
  maxVersionOf: (id: number) => Promise<number>;
  retryMs: number;
}

export class ClusterBootstrap {
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly options: ClusterBootstrapOptions) {}

  /** Called when this node becomes leader (and at start): does what is missing, retrying while it leads. */
  leading(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    void this.run().finally(() => {
      this.running = false;
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
  }

  private async run(): Promise<void> {
    const { driver, log } = this.options;
    try {
      await driver.linearizableRead();
      if (!driver.isLeader) return;
      if (driver.broker.machineVersion() < MACHINE_VERSION) await this.upgradeMachine();
      const admin = this.options.admin;
      if (admin !== null && driver.broker.userCount === 0 && driver.broker.machineVersion() >= ACCESS_CONTROL_VERSION) await this.createAdmin(admin);
    } catch (err) {
      if (this.stopped) return;
      log.warn({ event: "bootstrap-retry", err: err instanceof Error ? err.message : String(err) }, "cluster bootstrap step failed; retrying while this node leads");
      this.timer = setTimeout(() => {
        this.timer = null;
        if (driver.isLeader) this.leading();
      }, this.options.retryMs);
      this.timer.unref();
    }
  }

  private async upgradeMachine(): Promise<void> {
    const { driver, log } = this.options;
    const status = driver.status();
    const others = [...new Set([...status.confState.voters, ...status.confState.learners])].filter((id) => id !== status.id);
    for (const id of others) {
      const max = await this.options.maxVersionOf(id);
      if (max < MACHINE_VERSION) {
        log.info({ event: "machine-version-held", member: id, max }, `state-machine version stays at ${driver.broker.machineVersion()}: node ${id} applies versions up to ${max}`);
        return;
      }
    }
    const command: raftmq.v1.Command.$Properties = { setClusterSettings: { machineVersion: MACHINE_VERSION, settings: settingsToProto(driver.broker.settings()) } };
    const [result] = await propose(driver, [command]);
    if (result !== undefined && !result.ok) throw new Error(result.error.message);
    log.info({ event: "machine-version", version: MACHINE_VERSION }, `the cluster moved to state-machine version ${MACHINE_VERSION}`);
  }

  private async createAdmin(admin: BootstrapAdmin): Promise<void> {
    const { driver, log } = this.options;
    const passwordHash = await hashPassword(admin.password);
    const [created, permitted] = await propose(driver, [
      { addUser: { name: admin.user, passwordHash, tags: ["administrator"], onlyIfNoUsers: true } },
      { setPermissions: { user: admin.user, vhost: "/", configure: ".*", write: ".*", read: ".*" } },
    ]);
    if (created !== undefined && !created.ok) throw new Error(created.error.message);
    if (permitted !== undefined && !permitted.ok) log.warn({ event: "bootstrap-admin", err: permitted.error.message }, "could not grant the bootstrap administrator permissions on /");
    log.info({ event: "bootstrap-admin", user: admin.user }, `bootstrap administrator "${admin.user}" is in place`);
  }
}
