// Runs deploy/docker/prestop-transfer.mjs against a stand-in Cluster service on 127.0.0.1 that
// answers with real protobuf encodings, so the script's hand-written decoding is checked too;
// plaintext, and on mutual TLS as the node would serve it.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { raftmq } from "@raftmq/proto";
import { type CertificateWithKey, createCa, createClientCertificate, createNodeCertificate } from "@raftmq/server";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DOCKER_DIR } from "./src/deploy-paths.ts";

interface FakeCluster {
  port: number;
  calls: string[];
  /** The subject CN of the client certificate each call came with, on TLS. */
  clientCertificates: string[];
  close(): Promise<void>;
}

interface FakeTls {
  ca: string;
  /** What the client port serves. */
  serves: CertificateWithKey;
}

/** A Cluster service whose leader is `leader()`; TransferLeadership runs `onTransfer`. With `tls`, it demands a CA-signed client certificate. */
async function fakeCluster(nodeId: number, leader: () => number, onTransfer: () => void, tls?: FakeTls): Promise<FakeCluster> {
  const calls: string[] = [];
  const clientCertificates: string[] = [];
  const server =
    tls === undefined ? http2.createServer() : http2.createSecureServer({ ca: tls.ca, cert: tls.serves.certPem, key: tls.serves.keyPem, requestCert: true, rejectUnauthorized: true });
  server.on("stream", (stream, headers) => {
    const method = String(headers[":path"]).replace("/raftmq.v1.Cluster/", "");
    calls.push(method);
    if (tls !== undefined) clientCertificates.push(String((stream.session?.socket as TLSSocket | undefined)?.getPeerCertificate().subject?.CN ?? ""));
    stream.on("data", () => undefined);
    stream.on("end", () => {
      let body: Uint8Array;
      if (method === "Status") {
        body = raftmq.v1.StatusResponse.encode({
          nodeId,
          role: leader() === nodeId ? "leader" : "follower",
          term: 7,
          leaderId: leader(),
          leaderClientAddress: "raftmq-1.raftmq-headless.default.svc.cluster.local:7600",
          // Large enough to take several varint bytes, with members before and after.
          commitIndex: 2 ** 40 + 3,
          members: [{ id: 1, peerAddress: "a:7700", clientAddress: "a:7600", matchIndex: 300 }],
          ready: true,
          version: "0.1.0",
        }).finish();
      } else if (method === "TransferLeadership") {
        onTransfer();
        body = raftmq.v1.TransferLeadershipResponse.encode({ leaderId: leader() }).finish();
      } else {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "12", "grpc-message": "unimplemented" }));
        stream.end();
        return;
      }
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      frame.set(body, 5);
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(frame);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return { port, calls, clientCertificates, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function runPrestop(port: number, timeoutMs: number, env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(DOCKER_DIR, "prestop-transfer.mjs")], {
      env: { PATH: process.env.PATH, RAFTMQ_CLIENT_PORT: String(port), RAFTMQ_PRESTOP_TIMEOUT_MS: String(timeoutMs), ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs + 10_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(killer);
      resolve({ code, stderr });
    });
  });
}

const servers: FakeCluster[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("preStop leadership hand-over", () => {
  it("transfers leadership when this node leads and waits until it has moved", async () => {
    let leader = 2;
    const cluster = await fakeCluster(2, () => leader, () => setTimeout(() => (leader = 3), 300));
    servers.push(cluster);
    const result = await runPrestop(cluster.port, 5000);
    expect(result.code, result.stderr).toBe(0);
    expect(cluster.calls.filter((c) => c === "TransferLeadership")).toHaveLength(1);
    expect(cluster.calls.filter((c) => c === "Status").length).toBeGreaterThanOrEqual(2);
    expect(result.stderr).toContain("node 2 handed leadership to 3");
  });

  it("does nothing on a follower: a forwarded transfer would move someone else's leadership", async () => {
    const cluster = await fakeCluster(2, () => 1, () => undefined);
    servers.push(cluster);
    const result = await runPrestop(cluster.port, 5000);
    expect(result.code, result.stderr).toBe(0);
    expect(cluster.calls).toEqual(["Status"]);
  });

  it("gives up with a failure after its timeout when leadership does not move", async () => {
    const cluster = await fakeCluster(1, () => 1, () => undefined);
    servers.push(cluster);
    const started = performance.now();
    const result = await runPrestop(cluster.port, 800);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("still leads");
    expect(performance.now() - started).toBeGreaterThanOrEqual(800);
  });

  it("fails when no node answers on the client port", async () => {
    const cluster = await fakeCluster(1, () => 1, () => undefined);
    const port = cluster.port;
    await cluster.close();
    const result = await runPrestop(port, 2000);
    expect(result.code).toBe(1);
  });
});

describe("preStop leadership hand-over on TLS", () => {
  const dir = mkdtempSync(join(tmpdir(), "raftmq-prestop-tls-"));
  let ca: CertificateWithKey;
  let node2: CertificateWithKey;
  /** The pod's env: the node's own TLS files, as the StatefulSet gives the container. */
  let podEnv: Record<string, string>;

  beforeAll(async () => {
    ca = await createCa();
    node2 = await createNodeCertificate(ca, { nodeId: 2, hosts: ["raftmq-1.raftmq-headless.default.svc.cluster.local"] });
    podEnv = { RAFTMQ_TLS_CA_FILE: join(dir, "ca.crt"), RAFTMQ_TLS_CERT_FILE: join(dir, "tls.crt"), RAFTMQ_TLS_KEY_FILE: join(dir, "tls.key") };
    writeFileSync(podEnv.RAFTMQ_TLS_CA_FILE ?? "", ca.certPem);
    writeFileSync(podEnv.RAFTMQ_TLS_CERT_FILE ?? "", node2.certPem);
    writeFileSync(podEnv.RAFTMQ_TLS_KEY_FILE ?? "", node2.keyPem);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("connects with mutual TLS as the node, trusting the cluster CA, and hands leadership over", async () => {
    let leader = 2;
    const cluster = await fakeCluster(2, () => leader, () => setTimeout(() => (leader = 3), 300), { ca: ca.certPem, serves: node2 });
    servers.push(cluster);
    const result = await runPrestop(cluster.port, 5000, podEnv);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain("node 2 handed leadership to 3");
    expect(new Set(cluster.clientCertificates)).toEqual(new Set(["raftmq-node-2"]));
  });

  it("refuses a client port whose certificate another CA signed, or that is no server's", async () => {
    const otherCa = await createCa({ commonName: "someone else's CA" });
    for (const serves of [await createNodeCertificate(otherCa, { nodeId: 2, hosts: ["127.0.0.1"] }), await createClientCertificate(ca, { user: "mallory" })]) {
      const cluster = await fakeCluster(2, () => 2, () => undefined, { ca: ca.certPem, serves });
      servers.push(cluster);
      const result = await runPrestop(cluster.port, 2000, podEnv);
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toMatch(/certificate/);
      expect(cluster.calls).toEqual([]);
    }
  });

  it("speaks plaintext with --insecure", async () => {
    const cluster = await fakeCluster(2, () => 1, () => undefined);
    servers.push(cluster);
    const result = await runPrestop(cluster.port, 2000, { RAFTMQ_INSECURE: "true" });
    expect(result.code, result.stderr).toBe(0);
    expect(cluster.calls).toEqual(["Status"]);
  });
});
