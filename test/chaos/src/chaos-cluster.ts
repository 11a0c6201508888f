// Real node processes for a chaos run, with the fault actions the nemesis needs (kill, restart,
// pause, resume, remove and re-add a member) and what it must know (members, leader). Node
// output goes to one log file per node in the run folder.

import { createWriteStream, rmSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type RaftmqClient } from "@raftmq/client";
import { ClusterHarness, type HarnessSecurity, type NodeProcess } from "../../integration/cluster-harness.ts";
import type { NamespaceNetwork } from "./net/namespace-network.ts";

export interface ChaosClusterOptions {
  readonly nodes: number;
  /** Node logs are written here, one file per node id. */
  readonly logDir: string;
  readonly name?: string;
  /** Runs each node in its own network namespace of this network (the caller is in its hub). */
  readonly network?: NamespaceNetwork;
  /** "tls": mutual TLS between the nodes, TLS and authentication for the clients (default: RAFTMQ_TEST_SECURITY, else insecure). */
  readonly security?: HarnessSecurity;
  /** Flags every node gets on top of the harness's own (client keepalive, say). */
  readonly nodeFlags?: readonly string[];
}

/** A node process that exited without the harness asking it to. */
export interface NodeCrash {
  readonly id: number;
  readonly code: number | null;
  readonly signal: string | null;
}

/**
 * Why the runner cannot reach the nodes' plain AMQP port, or undefined when it can: a TLS node
 * serves it on its own 127.0.0.1 only (and the harness gives it no AMQPS port), which is out of
 * reach from the hub when the node runs in a namespace of its own.
 */
export function amqpUnreachable(security: HarnessSecurity, inNamespaces: boolean): string | undefined {
  if (security === "tls" && inNamespaces) return "with TLS the nodes serve plain AMQP on their own 127.0.0.1 only, out of reach from the hub: run the AMQP workload with network nemeses in insecure mode (--security insecure)";
  return undefined;
}

/** Admin calls that do not answer within this are retried or given up. */
const ADMIN_TIMEOUT_MS = 3000;
/** A removed node stops by itself; past this it is killed. */
const REMOVED_EXIT_WAIT_MS = 10_000;
const PROMOTION_TIMEOUT_MS = 30_000;
const NODE_FLAGS = ["--tick-ms", "50", "--log-level", "info"];

export class ChaosCluster {
  readonly harness: ClusterHarness;
  readonly #logDir: string;
  readonly #members = new Set<number>();
  readonly #joined = new Set<number>();
  readonly #paused = new Set<number>();
  /** Exits the harness caused (kill, removal, stop): any other exit is a crash. */
  readonly #expectedExits = new Set<number>();
  readonly #logs = new Map<number, WriteStream>();
  readonly crashes: NodeCrash[] = [];
  readonly initialNodes: number;
  readonly network: NamespaceNetwork | undefined;

  constructor(options: ChaosClusterOptions) {
    if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 9) throw new RangeError(`nodes must be 1..9, got ${options.nodes}`);
    const net = options.network;
    this.harness = new ClusterHarness(
      options.name ?? "chaos",
      [...NODE_FLAGS, ...(options.nodeFlags ?? [])],
      net === undefined ? undefined : { host: (id) => net.host(id), wrap: (id, command, args) => net.wrap(id, command, args) },
      options.security,
    );
    this.network = net;
    this.#logDir = options.logDir;
    this.initialNodes = options.nodes;
  }

  async start(): Promise<void> {
    await this.harness.plan(this.initialNodes);
    const ids = this.harness.specs.map((s) => s.id);
    for (const id of ids) this.#members.add(id);
    await Promise.all(ids.map((id) => this.#startNode(id, false)));
  }

  /** Current voters and learners, as the harness changed them. */
  members(): number[] {
    return [...this.#members].sort((a, b) => a - b);
  }

  running(id: number): boolean {
    return this.harness.processes.has(id);
  }

  paused(): number[] {
    return [...this.#paused].sort((a, b) => a - b);
  }

  /** Members whose process is down. */
  down(): number[] {
    return this.members().filter((id) => !this.running(id));
  }

  /** Running, unpaused members: the ones that can answer. */
  live(): number[] {
    return this.members().filter((id) => this.running(id) && !this.#paused.has(id));
  }

  clientAddress(id: number): string {
    return this.harness.clientAddress(id);
  }

  /** Credentials and TLS of a client of this cluster (none when it runs insecure). */
  clientOptions(): ReturnType<ClusterHarness["clientOptions"]> {
    return this.harness.clientOptions();
  }

  clientAddresses(): string[] {
    return this.members().map((id) => this.clientAddress(id));
  }

  /** Node `id`'s plain AMQP 0-9-1 URL, with the run's credentials. */
  amqpUrl(id: number): string {
    const unreachable = amqpUnreachable(this.harness.security, this.network !== undefined);
    if (unreachable !== undefined) throw new Error(unreachable);
    const { credentials } = this.clientOptions();
    const user = credentials === undefined ? "guest:guest" : `${encodeURIComponent(credentials.username)}:${encodeURIComponent(credentials.password)}`;
    // A TLS node serves plain AMQP on 127.0.0.1 only, where it runs unless namespaces place it.
    const host = this.harness.security === "tls" ? "127.0.0.1" : this.harness.host(id);
    return `amqp://${user}@${host}:${this.harness.spec(id).amqpPort}`;
  }

  /** The leader as a live node reports itself, or undefined. */
  async leader(): Promise<number | undefined> {
    const live = this.live();
    if (live.length === 0) return undefined;
    let client: RaftmqClient;
    try {
      client = await connect(
        live.map((id) => this.clientAddress(id)),
        { discoveryTimeoutMs: 1000, callTimeoutMs: 1000, retryTimeoutMs: 1000, ...this.clientOptions() },
      );
    } catch {
      return undefined;
    }
    try {
      const { nodes } = await client.clusterStatus();
      const leaders = nodes.filter((n) => n.role === "leader" && this.#members.has(n.nodeId) && live.includes(n.nodeId));
      // Two nodes may both believe they lead for a moment; the higher term is the real one.
      leaders.sort((a, b) => b.term - a.term);
      return leaders[0]?.nodeId;
    } catch {
      return undefined;
    } finally {
      client.close();
    }
  }

  async waitForLeader(timeoutMs: number): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const leader = await this.leader();
      if (leader !== undefined) return leader;
      await sleep(100);
    }
    return undefined;
  }

  async kill(id: number): Promise<void> {
    const proc = this.harness.processes.get(id);
    if (proc === undefined) return;
    this.#expectedExits.add(id);
    this.#paused.delete(id);
    await this.harness.stop(id, "SIGKILL");
  }

  async restart(id: number): Promise<void> {
    if (this.running(id)) return;
    await this.#startNode(id, this.#joined.has(id));
  }

  pause(id: number): void {
    const pid = this.harness.processes.get(id)?.child.pid;
    if (pid === undefined || this.#paused.has(id)) return;
    process.kill(pid, "SIGSTOP");
    this.#paused.add(id);
  }

  resume(id: number): void {
    const pid = this.harness.processes.get(id)?.child.pid;
    this.#paused.delete(id);
    if (pid === undefined) return;
    process.kill(pid, "SIGCONT");
  }

  /** Opens an admin client on the live members; the caller closes it. */
  async admin(): Promise<RaftmqClient> {
    return connect(
      this.live().map((id) => this.clientAddress(id)),
      { callTimeoutMs: ADMIN_TIMEOUT_MS, retryTimeoutMs: 10_000, discoveryTimeoutMs: 1000, ...this.clientOptions() },
    );
  }

  /** Removes member `id` through the admin API, waits for its process to leave and wipes its data. */
  async removeMember(id: number): Promise<void> {
    this.#expectedExits.add(id);
    const proc = this.harness.processes.get(id);
    const client = await this.admin();
    try {
      await client.removeMember(id);
    } catch (err) {
      // A leader that removes itself may step down before it answers: the removal happened
      // when the node leaves on its own (exit 0) shortly after.
      const left = proc === undefined ? undefined : await Promise.race([proc.exit, sleep(REMOVED_EXIT_WAIT_MS).then(() => undefined)]);
      if (left?.code !== 0) {
        this.#expectedExits.delete(id);
        throw err;
      }
    } finally {
      client.close();
    }
    this.#members.delete(id);
    if (proc !== undefined) {
      const exited = await Promise.race([proc.exit.then(() => true), sleep(REMOVED_EXIT_WAIT_MS).then(() => false)]);
      if (!exited) await this.harness.stop(id, "SIGKILL");
    }
    rmSync(this.harness.spec(id).dataDir, { recursive: true, force: true });
  }

  /** Starts a fresh node with a new id and empty data (--join) and adds it through the admin API. */
  async addNewMember(): Promise<number> {
    const spec = await this.harness.addNodeSpec();
    this.#joined.add(spec.id);
    this.#members.add(spec.id);
    await this.#startNode(spec.id, true);
    const client = await this.admin();
    try {
      await client.addMember(spec.id, this.harness.peerAddress(spec.id), this.clientAddress(spec.id));
    } catch (err) {
      this.#members.delete(spec.id);
      await this.kill(spec.id);
      throw err;
    } finally {
      client.close();
    }
    await this.#waitForVoter(spec.id);
    return spec.id;
  }

  /**
   * Starts node `id` when it is expected to refuse (a corrupt data directory): its exit is not a
   * crash. Resolves with the exit code and output; throws if the node came up instead.
   */
  async startExpectingRefusal(id: number): Promise<{ code: number | null; output: string }> {
    this.#expectedExits.add(id);
    let proc: NodeProcess;
    try {
      proc = await this.harness.start(id, { members: this.members(), join: this.#joined.has(id) });
    } catch (err) {
      const output = err instanceof Error ? err.message : String(err);
      this.#log(id).write(`${output}\n`);
      const code = /\(code (\d+),/.exec(output)?.[1];
      return { code: code === undefined ? null : Number(code), output };
    }
    await this.harness.stop(proc.spec.id, "SIGKILL");
    throw new Error(`node ${id} started although it was expected to refuse`);
  }

  /**
   * A new node id that will run where `oldId` ran (its ports, its data directory), for replacing
   * a node whose data was lost; the membership is the caller's business until adoptReplacement.
   */
  async planReplacement(oldId: number): Promise<number> {
    const old = this.harness.spec(oldId);
    const spec = await this.harness.addNodeSpec();
    Object.assign(spec, { clientPort: old.clientPort, peerPort: old.peerPort, httpPort: old.httpPort, amqpPort: old.amqpPort, dataDir: old.dataDir });
    return spec.id;
  }

  /** After `oldId` was removed and `newId` added (as a learner): starts `newId` and waits for it to be a voter. */
  async adoptReplacement(oldId: number, newId: number): Promise<void> {
    this.#expectedExits.add(oldId);
    this.#members.delete(oldId);
    this.#members.add(newId);
    this.#joined.add(newId);
    await this.#startNode(newId, true);
    await this.#waitForVoter(newId);
  }

  /** Waits until the leader counts `id` as a voter, so the next fault starts from a full cluster. */
  async #waitForVoter(id: number): Promise<void> {
    const deadline = Date.now() + PROMOTION_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const client = await this.admin().catch(() => undefined);
      if (client !== undefined) {
        try {
          const { nodes } = await client.clusterStatus();
          const leader = nodes.find((n) => n.role === "leader");
          if (leader?.members.some((m) => m.id === id && m.role === "voter") === true) return;
        } catch {
          // No answer yet: ask again.
        } finally {
          client.close();
        }
      }
      await sleep(200);
    }
    throw new Error(`node ${id} was not promoted to voter within ${PROMOTION_TIMEOUT_MS} ms`);
  }

  /** Kills every node this cluster started and removes its data; closes the log files. */
  async cleanup(): Promise<void> {
    for (const id of this.harness.processes.keys()) {
      this.#expectedExits.add(id);
      this.resume(id);
    }
    await this.harness.cleanup();
    await Promise.all([...this.#logs.values()].map((s) => new Promise<void>((resolve) => s.end(resolve))));
    this.#logs.clear();
  }

  async #startNode(id: number, join: boolean): Promise<void> {
    this.#expectedExits.delete(id);
    let proc: NodeProcess;
    try {
      await this.network?.ensureNode(id);
      proc = await this.harness.start(id, { members: this.members(), join });
    } catch (err) {
      this.#log(id).write(`${err instanceof Error ? err.message : String(err)}\n`);
      throw err;
    }
    const log = this.#log(id);
    for (const line of proc.lines) log.write(`${line}\n`);
    proc.child.stdout?.on("data", (chunk: Buffer) => log.write(chunk));
    proc.child.stderr?.on("data", (chunk: Buffer) => log.write(chunk));
    void proc.exit.then(({ code, signal }) => {
      log.write(`-- exited: code ${code} signal ${signal}\n`);
      if (!this.#expectedExits.has(id)) this.crashes.push({ id, code, signal });
    });
  }

  #log(id: number): WriteStream {
    let s = this.#logs.get(id);
    if (s === undefined) {
      s = createWriteStream(join(this.#logDir, `node-${id}.log`), { flags: "a" });
      this.#logs.set(id, s);
    }
    return s;
  }
}
