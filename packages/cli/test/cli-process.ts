// Runs the real raftmq / raftmqctl binaries as child processes and records every PID, so a test
// can stop whatever it started even after a failure.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../bin/", import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const started = new Set<ChildProcess>();

export function spawnBin(bin: "raftmq" | "raftmqctl", args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): ChildProcess {
  const child = spawn(process.execPath, [`${BIN}${bin}.mjs`, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  started.add(child);
  child.once("exit", () => started.delete(child));
  return child;
}

/** Runs a command to its end; `input` goes to stdin. */
export function run(bin: "raftmq" | "raftmqctl", args: string[], options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const child = spawnBin(bin, args, options);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  child.stdin?.end(options.input ?? "");
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  return new Promise((resolve) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** Kills every child still running, by PID. */
export async function killAll(): Promise<void> {
  const left = [...started];
  for (const c of left) {
    if (c.pid !== undefined && c.exitCode === null) {
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
  }
  await Promise.all(left.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once("exit", r)))));
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** A base port whose next `count` ports were all free a moment ago. */
export async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all(Array.from({ length: count }, (_, i) => canListen(base + i)));
    if (free.every(Boolean)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}
