// The image's build steps run for real, since no container engine runs here: the build context
// (the repository minus Dockerfile.dockerignore) is copied to a temp folder, the build stage's
// script assembles the runtime folder, the context is deleted, and a node starts from that folder
// alone with the image's environment and entrypoint, on TLS with certificates the test makes.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { DockerfileParser } from "dockerfile-ast";
import { createCa, createNodeCertificate, tlsCredentials } from "@raftmq/server";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, TestClient } from "../integration/broker-test-client.ts";
import { DOCKER_DIR, DOCKERFILE, REPO_ROOT } from "./src/deploy-paths.ts";
import { freePorts } from "../integration/cluster-harness.ts";

const root = mkdtempSync(join(tmpdir(), "raftmq-image-"));
let node: ChildProcess | null = null;
let exited: Promise<unknown> = Promise.resolve();

/** Patterns of Dockerfile.dockerignore as predicates on a path relative to the context. */
function ignoredBy(file: string): (path: string) => boolean {
  const patterns = readFileSync(file, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const toRegExp = (glob: string) => new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*\*\//g, "(.*/)?").replace(/\*/g, "[^/]*")}$`);
  const matchers = patterns.map(toRegExp);
  return (path) => matchers.some((m) => m.test(path));
}

function copyContext(to: string): void {
  const ignored = ignoredBy(join(DOCKER_DIR, "Dockerfile.dockerignore"));
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      const rel = relative(REPO_ROOT, full);
      if (ignored(rel)) continue;
      if (entry.isDirectory()) {
        mkdirSync(join(to, rel), { recursive: true });
        walk(full);
      } else if (entry.isFile()) cpSync(full, join(to, rel));
    }
  };
  walk(REPO_ROOT);
}

/** ENV of the image's last stage, and its ENTRYPOINT. */
function runtimeStage(): { env: Record<string, string>; entrypoint: string[] } {
  const instructions = DockerfileParser.parse(readFileSync(DOCKERFILE, "utf8")).getInstructions();
  const lastFrom = instructions.map((i) => i.getKeyword()).lastIndexOf("FROM");
  const env: Record<string, string> = {};
  let entrypoint: string[] = [];
  for (const i of instructions.slice(lastFrom)) {
    if (i.getKeyword() === "ENV") {
      for (const arg of i.getArguments().map((a) => a.getValue())) {
        const eq = arg.indexOf("=");
        if (eq > 0) env[arg.slice(0, eq)] = arg.slice(eq + 1);
      }
    }
    if (i.getKeyword() === "ENTRYPOINT") entrypoint = JSON.parse(i.getArgumentsContent() ?? "[]") as string[];
  }
  return { env, entrypoint };
}

afterAll(async () => {
  node?.kill("SIGKILL");
  await exited;
  rmSync(root, { recursive: true, force: true });
});

describe("runtime image, rehearsed", () => {
  it("assembles a self-contained folder from which a node starts and answers /healthz", { timeout: 120_000 }, async () => {
    const context = join(root, "context");
    const out = join(root, "opt-raftmq");
    copyContext(context);
    execFileSync("sh", ["deploy/docker/assemble-runtime.sh", out], { cwd: context, stdio: "pipe", env: { ...process.env, CI: "true" } });
    // From here on nothing may come from the repository or the build context.
    rmSync(context, { recursive: true, force: true });

    const { env, entrypoint } = runtimeStage();
    expect(entrypoint[0]).toBe("node");
    const [client, peer, http] = await freePorts(3);
    const data = join(root, "var-lib-raftmq");
    // The image's paths, rooted at the temp folder instead of /.
    const args = entrypoint.slice(1).map((a) => a.replace("/opt/raftmq", out));
    const cwd = join(root, "workdir");
    mkdirSync(cwd);
    // What the StatefulSet mounts: the CA and node 1's certificate and key.
    const ca = await createCa();
    const cert = await createNodeCertificate(ca, { nodeId: 1, hosts: ["127.0.0.1"] });
    const tls = { RAFTMQ_TLS_CA_FILE: join(root, "ca.crt"), RAFTMQ_TLS_CERT_FILE: join(root, "tls.crt"), RAFTMQ_TLS_KEY_FILE: join(root, "tls.key") };
    writeFileSync(tls.RAFTMQ_TLS_CA_FILE, ca.certPem);
    writeFileSync(tls.RAFTMQ_TLS_CERT_FILE, cert.certPem);
    writeFileSync(tls.RAFTMQ_TLS_KEY_FILE, cert.keyPem, { mode: 0o600 });
    const lines: string[] = [];
    node = spawn(process.execPath, args, {
      cwd,
      env: { ...env, ...tls, PATH: process.env.PATH ?? "", RAFTMQ_DATA_DIR: data, RAFTMQ_HOST: "127.0.0.1", RAFTMQ_CLIENT_PORT: String(client), RAFTMQ_PEER_PORT: String(peer), RAFTMQ_HTTP_PORT: String(http), RAFTMQ_AMQP_PORT: "0", RAFTMQ_AMQPS_PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    node.stdout?.on("data", (c: Buffer) => lines.push(c.toString()));
    node.stderr?.on("data", (c: Buffer) => lines.push(c.toString()));
    const child = node;
    exited = new Promise((resolve) => child.once("exit", resolve));

    const health = await eventually(
      "/healthz",
      async () => {
        const res = await fetch(`http://127.0.0.1:${http}/healthz`);
        return res.status === 200 ? res.status : undefined;
      },
      30_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${lines.join("")}`);
    });
    expect(health).toBe(200);
    // Mutual TLS as the node itself (a node certificate may call anything).
    const c = new TestClient(`127.0.0.1:${client}`, { channel: tlsCredentials(Buffer.from(ca.certPem), Buffer.from(cert.keyPem), Buffer.from(cert.certPem)) });
    try {
      const status = await eventually("a leader", async () => {
        const s = await c.call("Status", {}, 2000);
        return Number(s.leaderId) === 1 ? s : undefined;
      });
      expect(status.version).toBe("0.1.0");
    } finally {
      c.close();
    }
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
