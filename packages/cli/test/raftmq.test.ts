// The raftmq binary: `raftmq node --help` comes from the server's option table, and `raftmq dev`
// starts a local cluster, names its endpoints and leader, stops on SIGINT and keeps its data.
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { envName, NODE_OPTIONS } from "@raftmq/server";
import { afterAll, describe, expect, it } from "vitest";
import { freePortRange, killAll, run, spawnBin } from "./cli-process.ts";

const root = mkdtempSync(join(tmpdir(), "raftmq-dev-"));

afterAll(async () => {
  await killAll();
  rmSync(root, { recursive: true, force: true });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves with everything printed once `pattern` appears; rejects if the process exits first. */
function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; output:\n${out}`)), timeoutMs);
    const onData = (c: Buffer) => {
      out += c.toString();
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ${pattern}; output:\n${out}`));
    });
  });
}

describe("raftmq node", () => {
  it("--help lists every option of the node's table with its environment variable", async () => {
    const r = await run("raftmq", ["node", "--help"]);
    expect(r.code).toBe(0);
    const help = r.stdout.replace(/\s+/g, " ");
    for (const spec of NODE_OPTIONS) {
      expect(help).toContain(`--${spec.name}`);
      expect(help).toContain(envName(spec.name));
    }
  });

  it("rejects a bad option value with a message and a non-zero exit", async () => {
    const r = await run("raftmq", ["node", "--tick-ms", "zero"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("tick-ms");
  });
});

describe("raftmq dev", () => {
  it("starts 3 nodes, prints endpoints and the leader, stops cleanly on SIGINT and keeps the data", async () => {
    const base = await freePortRange(18);
    const ports = ["--client-port", String(base), "--peer-port", String(base + 3), "--http-port", String(base + 6), "--tls-client-port", String(base + 9), "--amqp-port", String(base + 12), "--amqps-port", String(base + 15)];
    const addresses = [0, 1, 2].map((i) => `127.0.0.1:${base + i}`).join(",");
    const dataDir = join(root, "data");
    const start = () => spawnBin("raftmq", ["dev", "--data-dir", dataDir, ...ports, "--log-level", "warn"]);

    const first = start();
    const out = await waitForOutput(first, /Ctrl-C stops the cluster/);
    for (let i = 0; i < 3; i++) expect(out).toContain(`node ${i + 1}  client 127.0.0.1:${base + i} (TLS 127.0.0.1:${base + 9 + i})  peer 127.0.0.1:${base + 3 + i} (mutual TLS)  AMQP amqp://127.0.0.1:${base + 12 + i} (TLS ${base + 15 + i})`);
    expect(out).toContain("guest/guest");
    expect(out).toMatch(/leader: node [123] \(127\.0\.0\.1:\d+\)/);
    expect(out).toContain("raftmqctl.mjs");
    expect(out).toContain(" status");
    const pids = [...out.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(3);
    for (let i = 1; i <= 3; i++) expect(existsSync(join(dataDir, `node-${i}`))).toBe(true);

    const declared = await run("raftmqctl", ["--addresses", addresses, "queue", "declare", "kept-across-runs"]);
    expect(declared.code).toBe(0);
    const published = await run("raftmqctl", ["--addresses", addresses, "publish", "kept-across-runs", "still here"]);
    expect(published.code).toBe(0);
    // The TLS ports beside them, with the dev CA the cluster made under its data folder.
    const overTls = await run("raftmqctl", ["--addresses", `127.0.0.1:${base + 9}`, "--tls-ca-file", join(dataDir, "certs", "ca.crt"), "whoami"]);
    expect(overTls.stderr).toBe("");
    expect(overTls.stdout).toContain("guest");
    const wrong = await run("raftmqctl", ["--addresses", addresses, "--username", "guest", "--password", "nope", "queue", "list"]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/authentication failed/);

    const stopped = waitForOutput(first, /stopped/);
    const exit = new Promise<number | null>((resolve) => first.once("exit", resolve));
    first.kill("SIGINT");
    await stopped;
    expect(await exit).toBe(0);
    for (const pid of pids) expect(isAlive(pid), `node process ${pid}`).toBe(false);

    const second = start();
    await waitForOutput(second, /Ctrl-C stops the cluster/);
    const consumed = await run("raftmqctl", ["--addresses", addresses, "consume", "kept-across-runs", "--count", "1"]);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout.trim()).toBe("still here");
    const exit2 = new Promise<number | null>((resolve) => second.once("exit", resolve));
    second.kill("SIGTERM");
    expect(await exit2).toBe(0);
  });
});
