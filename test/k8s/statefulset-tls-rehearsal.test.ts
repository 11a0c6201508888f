// The StatefulSet's pods on TLS, run locally: a CA, and for every rendered cert-manager Certificate
// a certificate with its URI and DNS names, laid out as the pod's projected `tls` volume; nodes
// started with the rendered environment (only the mount moved into a temp folder). The founders
// must form a cluster over mutual TLS as the ids their certificates name, the bootstrap
// administrator logs in with the Secret's password while checking a DNS name of the certificate,
// plaintext and a wrong password are refused, and the preStop hook hands leadership over on TLS.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { checkServerIdentity } from "node:tls";
import { createCa, createNodeCertificate, nodeIdOfCertificate, tlsCredentials } from "@raftmq/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basicAuth, TestClient, waitForLeader } from "../integration/broker-test-client.ts";
import { DOCKER_DIR, REPO_ROOT } from "./src/deploy-paths.ts";
import { DEPLOYMENTS, renderDeployment } from "./src/deployments.ts";
import { podLaunch, projectedSecretFiles } from "./src/statefulset-pod.ts";
import { all } from "./src/typed-objects.ts";

const SET = "raftmq";
const FOUNDERS = 3;
const CLI = join(REPO_ROOT, "packages/cli/bin/raftmq.mjs");
// The base's certificates name namespace default.
const base = DEPLOYMENTS.find((d) => d.label === "base");
if (base === undefined) throw new Error("no base deployment");
const NAMESPACE = base.namespace;
// Addresses of their own, apart from statefulset-rehearsal.test.ts's, which may run at the same time.
const ip = (ordinal: number) => `127.0.0.${30 + ordinal}`;
const hostName = (ordinal: number) => `${SET}-${ordinal}.${SET}-headless.${NAMESPACE}.svc.cluster.local`;

const objects = renderDeployment(base.dir);
const projection = projectedSecretFiles(objects, SET, "tls");
const root = mkdtempSync(join(tmpdir(), "raftmq-statefulset-tls-"));
const tlsDir = join(root, "etc-raftmq-tls");
const running = new Map<number, { child: ChildProcess; env: Record<string, string>; exit: Promise<number | null> }>();
const output = new Map<number, string[]>();
let caPem = "";

/** The environment the pod's container gets, its mount paths moved under tlsDir. */
function podEnv(ordinal: number): Record<string, string> {
  const launch = podLaunch(objects, SET, ordinal, NAMESPACE, base?.externalSecrets);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(launch.env)) {
    env[name] = value.startsWith(`${projection.mountPath}/`) ? join(tlsDir, value.slice(projection.mountPath.length + 1)) : value;
  }
  const aliases = Array.from({ length: FOUNDERS }, (_, n) => `${hostName(n)}=${ip(n)}`).join(",");
  return { ...env, RAFTMQ_DATA_DIR: join(root, `data-${ordinal}`), RAFTMQ_HOST: ip(ordinal), RAFTMQ_HOST_ALIAS: aliases, PATH: process.env.PATH ?? "" };
}

function startPod(ordinal: number): void {
  const env = podEnv(ordinal);
  const child = spawn(process.execPath, [CLI, "node"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  const lines = output.get(ordinal) ?? [];
  output.set(ordinal, lines);
  const onData = (chunk: Buffer) => {
    lines.push(...chunk.toString("utf8").split("\n").filter((l) => l !== ""));
    if (lines.length > 2000) lines.splice(0, lines.length - 2000);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  running.set(ordinal, { child, env, exit });
}

function dump(): string {
  return [...output.entries()].map(([n, lines]) => `--- ${SET}-${n}\n${lines.slice(-30).join("\n")}`).join("\n");
}

/** A client of pod `ordinal` that checks the pod's DNS name in its certificate, as the bootstrap administrator. */
function adminClient(ordinal: number, password?: string): TestClient {
  const env = podEnv(ordinal);
  const user = env.RAFTMQ_BOOTSTRAP_ADMIN_USER ?? "";
  const channel = tlsCredentials(Buffer.from(caPem), undefined, undefined, { checkServerIdentity: (_host, cert) => checkServerIdentity(hostName(ordinal), cert) });
  return new TestClient(`${ip(ordinal)}:7600`, { channel, metadata: basicAuth(user, password ?? env.RAFTMQ_BOOTSTRAP_ADMIN_PASSWORD ?? "") });
}

const clients: TestClient[] = [];

function runPrestop(env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(DOCKER_DIR, "prestop-transfer.mjs")], { env: { ...env, RAFTMQ_PRESTOP_TIMEOUT_MS: String(timeoutMs) }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stderr }));
  });
}

describe("StatefulSet rehearsal on TLS", () => {
  beforeAll(async () => {
    // What cert-manager would issue for each node Certificate, in the Secret layout its CA issuer
    // writes: the certificate (then the CA) in tls.crt, its key in tls.key, the CA in ca.crt.
    const ca = await createCa();
    caPem = ca.certPem;
    const pem = (text: string) => (text.endsWith("\n") ? text : `${text}\n`);
    const secrets = new Map<string, Record<string, string>>();
    for (const cert of all(objects, "Certificate").filter((c) => c.spec.isCA !== true)) {
      const nodeId = nodeIdOfCertificate({ subjectaltname: (cert.spec.uris ?? []).map((u) => `URI:${u}`).join(", ") });
      const leaf = await createNodeCertificate(ca, { nodeId, hosts: cert.spec.dnsNames ?? [] });
      secrets.set(cert.spec.secretName, { "tls.crt": pem(leaf.certPem) + pem(ca.certPem), "tls.key": pem(leaf.keyPem), "ca.crt": pem(ca.certPem) });
    }
    for (const file of projection.files) {
      const content = secrets.get(file.secret)?.[file.key];
      if (content === undefined) throw new Error(`no Certificate writes ${file.secret} ${file.key}`);
      mkdirSync(dirname(join(tlsDir, file.path)), { recursive: true });
      writeFileSync(join(tlsDir, file.path), content, { mode: 0o400 });
    }
    // The rehearsal runs the pods' own TLS settings, not --insecure.
    const env = podEnv(0);
    for (const name of ["RAFTMQ_TLS_CA_FILE", "RAFTMQ_TLS_CERT_FILE", "RAFTMQ_TLS_KEY_FILE"]) expect(env[name], name).toMatch(new RegExp(`^${tlsDir}/raftmq-0/`));
    expect(env.RAFTMQ_INSECURE).toBeUndefined();
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    const left = [...running.values()];
    for (const pod of left) pod.child.kill("SIGKILL");
    await Promise.all(left.map((p) => p.exit));
    rmSync(root, { recursive: true, force: true });
  });

  it("founders form a cluster over mutual TLS, each as the node its certificate names", async () => {
    for (let n = 0; n < FOUNDERS; n++) startPod(n);
    for (let n = 0; n < FOUNDERS; n++) clients.push(adminClient(n));
    try {
      await waitForLeader(clients, 60_000);
    } catch (err) {
      throw new Error(`${String(err)}\n${dump()}`);
    }
    // A founder that took a new id (it started after the others elected a leader) would present
    // a certificate naming its old one, and its peers would refuse it.
    for (let n = 0; n < FOUNDERS; n++) expect(Number((await clients[n]?.call("Status", {}, 2000))?.nodeId), `${SET}-${n}`).toBe(n + 1);
  });

  it("refuses a plaintext client and a wrong password", async () => {
    const plain = new TestClient(`${ip(0)}:7600`);
    const wrong = adminClient(0, "not-the-password");
    try {
      await expect(plain.call("Status", {}, 2000)).rejects.toThrow();
      await expect(wrong.call("Status", {}, 2000)).rejects.toThrow();
    } finally {
      plain.close();
      wrong.close();
    }
  });

  it("the preStop hook of the leader's pod hands leadership over, on TLS as the node", async () => {
    const leader = Number((await clients[0]?.call("Status", {}, 2000))?.leaderId);
    const pod = running.get(leader - 1);
    expect(pod, `pod of leader ${leader}`).toBeDefined();
    const result = await runPrestop(pod?.env ?? {}, 10_000);
    expect(result.code, `${result.stderr}\n${dump()}`).toBe(0);
    expect(result.stderr).toContain(`node ${leader} handed leadership to`);
    const next = await waitForLeader(clients, 20_000);
    expect(next).not.toBe(leader);
  });
});
