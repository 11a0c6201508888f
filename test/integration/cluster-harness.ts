// Runs real raftmq node processes on 127.0.0.1 (or where a NodePlacement puts them) with
// pre-allocated free ports and temporary data directories. Every process is tracked by PID so a test can stop them all, even after a failure.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type DevCertificates, writeDevCertificates } from "../../packages/server/src/tls/index.ts";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const NODE_MAIN = join(REPO_ROOT, "packages/server/src/node-main.ts");
/** Lines of each node's output kept for failure reports. */
const KEEP_LINES = 400;

export interface NodeSpec {
  id: number;
  clientPort: number;
  peerPort: number;
  httpPort: number;
  /** AMQP 0-9-1 (on 127.0.0.1 when the node runs TLS). */
  amqpPort: number;
  dataDir: string;
}

/**
 * Where node processes run and are reached. Without one, every node listens on 127.0.0.1 and
 * runs as a plain child process; a placement can give each node its own host and wrap its
 * command (run it inside a network namespace, say).
 */
export interface NodePlacement {
  host(id: number): string;
  /** The command that runs node `id`, given the plain one; it must exec, so its pid is the node's. */
  wrap(id: number, command: string, args: readonly string[]): { command: string; args: string[] };
}

export interface NodeProcess {
  spec: NodeSpec;
  child: ChildProcess;
  lines: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Ports that were free a moment ago: bound to port 0, noted, released. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    if (a === null || typeof a === "string") throw new Error("no port");
    return a.port;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/**
 * How the harness runs its nodes: "insecure" (--insecure: plaintext, nobody authenticated) or
 * "tls" (mutual TLS between the nodes with a CA made for the run, TLS on the client ports, and
 * the administrator ADMIN_USER created at bootstrap). RAFTMQ_TEST_SECURITY picks the default.
 */
export type HarnessSecurity = "insecure" | "tls";

export const ADMIN_USER = "admin";

export function defaultSecurity(): HarnessSecurity {
  return process.env.RAFTMQ_TEST_SECURITY === "tls" ? "tls" : "insecure";
}

export class ClusterHarness {
  readonly specs: NodeSpec[] = [];
  readonly processes = new Map<number, NodeProcess>();
  private readonly root: string;
  readonly security: HarnessSecurity;
  /** The bootstrap administrator's password in "tls" mode: made for the run, never written to disk. */
  readonly adminPassword = `pw-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}`;
  private certificates: DevCertificates | null = null;
  private making: Promise<DevCertificates | null> | null = null;

  constructor(
    readonly name: string,
    private readonly extraFlags: string[] = ["--tick-ms", "50", "--log-level", "info"],
    private readonly placement?: NodePlacement,
    security: HarnessSecurity = defaultSecurity(),
  ) {
    this.root = mkdtempSync(join(tmpdir(), `raftmq-${name}-`));
    this.security = security;
  }

  /** The folder of the run's CA and certificates ("tls" mode). */
  get certificateDir(): string {
    return join(this.root, "certs");
  }

  /** Makes the run's CA and a certificate for every planned node (and the admin's client certificate), once per set of nodes. */
  certificatesFor(ids: readonly number[]): Promise<DevCertificates> {
    const previous = this.making ?? Promise.resolve(null);
    const making = previous.then(async (done) => {
      if (done !== null && ids.every((id) => done.nodes.has(id))) return done;
      const all = [...new Set([...ids, ...(done === null ? [] : [...done.nodes.keys()])])];
      const hosts = [...new Set(["127.0.0.1", "localhost", ...all.map((id) => this.host(id))])];
      return writeDevCertificates(this.certificateDir, { nodeIds: all, hosts, users: [ADMIN_USER] });
    });
    this.making = making;
    return making.then((certs) => {
      this.certificates = certs;
      return certs;
    });
  }

  /** The flags that make node `id` run in this harness's security mode. */
  private async nodeSecurityFlags(id: number): Promise<string[]> {
    if (this.security === "insecure") return ["--insecure"];
    const certs = await this.certificatesFor(this.specs.map((s) => s.id));
    const node = certs.nodes.get(id);
    if (node === undefined) throw new Error(`no certificate for node ${id}`);
    return ["--tls-ca-file", certs.ca.certPath, "--tls-cert-file", node.certPath, "--tls-key-file", node.keyPath, "--bootstrap-admin-user", ADMIN_USER, "--tls-refresh-ms", "1000"];
  }

  /** What an SDK client needs to connect in this harness's mode (nothing when insecure). */
  clientOptions(): { credentials?: { username: string; password: string }; tls?: { ca: Buffer } } {
    if (this.security === "insecure") return {};
    const certs = this.certificates;
    if (certs === null) throw new Error("no certificates yet: start a node first");
    return { credentials: { username: ADMIN_USER, password: this.adminPassword }, tls: { ca: readFileSync(certs.ca.certPath) } };
  }

  /** Allocates ports and directories for nodes 1..count. */
  async plan(count: number): Promise<NodeSpec[]> {
    const ports = await freePorts(count * 4);
    for (let i = 0; i < count; i++) this.addSpec(ports[i * 4] ?? 0, ports[i * 4 + 1] ?? 0, ports[i * 4 + 2] ?? 0, ports[i * 4 + 3] ?? 0);
    return this.specs;
  }

  async addNodeSpec(): Promise<NodeSpec> {
    const [c, p, h, a] = await freePorts(4);
    return this.addSpec(c ?? 0, p ?? 0, h ?? 0, a ?? 0);
  }

  private addSpec(clientPort: number, peerPort: number, httpPort: number, amqpPort: number): NodeSpec {
    const id = this.specs.length + 1;
    const spec = { id, clientPort, peerPort, httpPort, amqpPort, dataDir: join(this.root, `node-${id}`) };
    this.specs.push(spec);
    return spec;
  }

  spec(id: number): NodeSpec {
    const s = this.specs.find((x) => x.id === id);
    if (s === undefined) throw new Error(`no node ${id}`);
    return s;
  }

  host(id: number): string {
    return this.placement?.host(id) ?? "127.0.0.1";
  }

  clientAddress(id: number): string {
    return `${this.host(id)}:${this.spec(id).clientPort}`;
  }

  peerAddress(id: number): string {
    return `${this.host(id)}:${this.spec(id).peerPort}`;
  }

  initialCluster(ids: number[]): string {
    return ids.map((id) => `${id}=${this.peerAddress(id)}/${this.clientAddress(id)}`).join(",");
  }

  /** Starts node `id` and resolves once it logged "node started" (within `startTimeoutMs`, 20 s unless given). */
  async start(id: number, options: { members: number[]; join?: boolean; flags?: string[]; startTimeoutMs?: number }): Promise<NodeProcess> {
    if (this.processes.has(id)) throw new Error(`node ${id} is running`);
    const s = this.spec(id);
    const args = [
      "--import",
      "tsx",
      NODE_MAIN,
      "--node-id",
      String(id),
      "--data-dir",
      s.dataDir,
      "--host",
      this.host(id),
      "--client-port",
      String(s.clientPort),
      "--peer-port",
      String(s.peerPort),
      "--http-port",
      String(s.httpPort),
      "--amqp-port",
      String(s.amqpPort),
      "--amqps-port",
      "",
      "--initial-cluster",
      this.initialCluster(options.members),
      ...(await this.nodeSecurityFlags(id)),
      ...this.extraFlags,
      ...(options.join === true ? ["--join"] : []),
      ...(options.flags ?? []),
    ];
    const run = this.placement?.wrap(id, process.execPath, args) ?? { command: process.execPath, args };
    const child = spawn(run.command, run.args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...(this.security === "tls" ? { RAFTMQ_BOOTSTRAP_ADMIN_PASSWORD: this.adminPassword } : {}) } });
    const lines: string[] = [];
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    const proc: NodeProcess = { spec: s, child, lines, exit };
    this.processes.set(id, proc);
    void exit.then(() => {
      if (this.processes.get(id) === proc) this.processes.delete(id);
    });
    const started = new Promise<void>((resolve, reject) => {
      const timeoutMs = options.startTimeoutMs ?? 20_000;
      const timer = setTimeout(() => reject(new Error(`node ${id} did not start within ${timeoutMs / 1000} s:\n${lines.join("\n")}`)), timeoutMs);
      const onLine = (line: string) => {
        lines.push(line);
        const event = /"event":"([a-z.-]+)"/.exec(line)?.[1];
        if (event !== undefined) this.events.set(`${id} ${event}`, (this.events.get(`${id} ${event}`) ?? 0) + 1);
        if (lines.length > KEEP_LINES) lines.splice(0, lines.length - KEEP_LINES);
        if (line.includes('"node started"')) {
          clearTimeout(timer);
          resolve();
        }
      };
      let pending = { out: "", err: "" };
      const feed = (which: "out" | "err") => (chunk: Buffer) => {
        const text = pending[which] + chunk.toString("utf8");
        const parts = text.split("\n");
        pending = { ...pending, [which]: parts.pop() ?? "" };
        for (const p of parts) onLine(p);
      };
      child.stdout?.on("data", feed("out"));
      child.stderr?.on("data", feed("err"));
      void exit.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`node ${id} exited (code ${code}, signal ${signal}) before starting:\n${lines.join("\n")}`));
      });
    });
    await started;
    return proc;
  }

  async startAll(count: number): Promise<void> {
    const ids = this.specs.slice(0, count).map((s) => s.id);
    await Promise.all(ids.map((id) => this.start(id, { members: ids })));
    if (this.security === "tls") await this.adminReady();
  }

  private adminSeen = false;
  /** Log lines per node and event, counted over the whole run (lines themselves are kept only for the last KEEP_LINES). */
  private readonly events = new Map<string, number>();

  /** How many log lines of `event` node `id` has written, across its restarts. */
  eventCount(id: number, event: string): number {
    return this.events.get(`${id} ${event}`) ?? 0;
  }

  /** In "tls" mode, waits until the first leader has created the bootstrap administrator (at once otherwise). */
  async adminReady(timeoutMs = 20_000): Promise<void> {
    if (this.security !== "tls") return;
    const until = Date.now() + timeoutMs;
    while (!this.adminSeen) {
      this.adminSeen = [...this.processes.values()].some((p) => p.lines.some((l) => l.includes('"event":"bootstrap-admin"')));
      if (this.adminSeen) return;
      if (Date.now() > until) throw new Error("no node created the bootstrap administrator");
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sends `signal` and waits for the exit; SIGKILL follows after `timeoutMs`. */
  async stop(id: number, signal: NodeJS.Signals = "SIGTERM", timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const proc = this.processes.get(id);
    if (proc === undefined) throw new Error(`node ${id} is not running`);
    const pid = proc.child.pid;
    if (pid !== undefined) process.kill(pid, signal);
    const timer = setTimeout(() => {
      if (pid !== undefined) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }, timeoutMs);
    const result = await proc.exit;
    clearTimeout(timer);
    return result;
  }

  logs(id: number): string {
    return this.processes.get(id)?.lines.join("\n") ?? "";
  }

  /** Kills every process this harness started (by PID) and removes the data directories. */
  async cleanup(): Promise<void> {
    const running = [...this.processes.values()];
    for (const p of running) {
      if (p.child.pid !== undefined && p.child.exitCode === null) {
        try {
          process.kill(p.child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    await Promise.all(running.map((p) => p.exit));
    rmSync(this.root, { recursive: true, force: true });
  }
}
