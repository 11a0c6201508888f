// Runs real raftmq node processes on 127.0.0.1 (or where a NodePlacement puts them) with
// pre-allocated free ports and temporary data directories. Every process is tracked by PID so a test can stop them all, even after a failure.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const NODE_MAIN = join(REPO_ROOT, "packages/server/src/node-main.ts");
/** Lines of each node's output kept for failure reports. */
const KEEP_LINES = 400;

export interface NodeSpec {
  id: number;
  clientPort: number;
  peerPort: number;
  httpPort: number;
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

export class ClusterHarness {
  readonly specs: NodeSpec[] = [];
  readonly processes = new Map<number, NodeProcess>();
  private readonly root: string;

  constructor(
    readonly name: string,
    private readonly extraFlags: string[] = ["--tick-ms", "50", "--log-level", "info"],
    private readonly placement?: NodePlacement,
  ) {
    this.root = mkdtempSync(join(tmpdir(), `raftmq-${name}-`));
  }

  /** Allocates ports and directories for nodes 1..count. */
  async plan(count: number): Promise<NodeSpec[]> {
    const ports = await freePorts(count * 3);
    for (let i = 0; i < count; i++) this.addSpec(ports[i * 3] ?? 0, ports[i * 3 + 1] ?? 0, ports[i * 3 + 2] ?? 0);
    return this.specs;
  }

  async addNodeSpec(): Promise<NodeSpec> {
    const [c, p, h] = await freePorts(3);
    return this.addSpec(c ?? 0, p ?? 0, h ?? 0);
  }

  private addSpec(clientPort: number, peerPort: number, httpPort: number): NodeSpec {
    const id = this.specs.length + 1;
    const spec = { id, clientPort, peerPort, httpPort, dataDir: join(this.root, `node-${id}`) };
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

  /** Starts node `id` and resolves once it logged "node started". */
  async start(id: number, options: { members: number[]; join?: boolean; flags?: string[] }): Promise<NodeProcess> {
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
      "--initial-cluster",
      this.initialCluster(options.members),
      ...this.extraFlags,
      ...(options.join === true ? ["--join"] : []),
      ...(options.flags ?? []),
    ];
    const run = this.placement?.wrap(id, process.execPath, args) ?? { command: process.execPath, args };
    const child = spawn(run.command, run.args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } });
    const lines: string[] = [];
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    const proc: NodeProcess = { spec: s, child, lines, exit };
    this.processes.set(id, proc);
    void exit.then(() => {
      if (this.processes.get(id) === proc) this.processes.delete(id);
    });
    const started = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${id} did not start within 20 s:\n${lines.join("\n")}`)), 20_000);
      const onLine = (line: string) => {
        lines.push(line);
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
