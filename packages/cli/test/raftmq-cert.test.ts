// `raftmq cert` as an operator runs it: the files it writes, their modes, and certificates that
// verify against the CA and let a node and a client through mutual TLS.
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { killAll, run } from "./cli-process.ts";

const root = mkdtempSync(join(tmpdir(), "raftmq-cert-"));
const dir = join(root, "certs");
const cert = (args: string[]) => run("raftmq", ["cert", ...args]);
const read = (name: string) => readFileSync(join(dir, name), "utf8");
const mode = (name: string) => statSync(join(dir, name)).mode & 0o777;

beforeAll(async () => {
  const ca = await cert(["create-ca", "--dir", dir, "--days", "30"]);
  expect(ca.code, ca.stderr).toBe(0);
  const node = await cert(["create-node", "--dir", dir, "--id", "2", "--host", "127.0.0.1", "--host", "localhost,raftmq-1.raftmq.svc"]);
  expect(node.code, node.stderr).toBe(0);
  const client = await cert(["create-client", "--dir", dir, "--user", "alice"]);
  expect(client.code, client.stderr).toBe(0);
});

afterAll(async () => {
  await killAll();
  rmSync(root, { recursive: true, force: true });
});

describe("raftmq cert", () => {
  it("writes the CA, node and client files, keys readable by their owner only", () => {
    expect(mode("ca.crt")).toBe(0o644);
    for (const key of ["ca.key", "node-2.key", "client-alice.key"]) expect(mode(key), key).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const key of ["ca.key", "node-2.key", "client-alice.key"]) expect(read(key)).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it("makes certificates that verify against the CA and carry the identities asked for", () => {
    const ca = new X509Certificate(read("ca.crt"));
    expect(ca.ca).toBe(true);
    expect((Date.parse(ca.validTo) - Date.now()) / 86_400_000).toBeCloseTo(30, 0);
    const node = new X509Certificate(read("node-2.crt"));
    expect(node.checkIssued(ca) && node.verify(ca.publicKey)).toBe(true);
    expect(node.subject).toBe("CN=raftmq-node-2\nO=raftmq");
    expect(node.subjectAltName).toBe("URI:urn:raftmq:node:2, IP Address:127.0.0.1, DNS:localhost, DNS:raftmq-1.raftmq.svc");
    expect(node.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    const alice = new X509Certificate(read("client-alice.crt"));
    expect(alice.checkIssued(ca) && alice.verify(ca.publicKey)).toBe(true);
    expect(alice.subject).toBe("CN=alice");
  });

  it("the files work for mutual TLS as they are", async () => {
    const server = tls.createServer({ requestCert: true, rejectUnauthorized: true, ca: read("ca.crt"), cert: read("node-2.crt"), key: read("node-2.key") }, (s) =>
      s.end(`hello ${s.getPeerX509Certificate()?.subject}`),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const said = await new Promise<string>((resolve, reject) => {
        let text = "";
        const socket = tls.connect({ host: "127.0.0.1", port, ca: read("ca.crt"), cert: read("client-alice.crt"), key: read("client-alice.key") });
        socket.on("data", (c: Buffer) => {
          text += c.toString();
        });
        socket.on("error", reject);
        socket.on("close", () => resolve(text));
      });
      expect(said).toBe("hello CN=alice");
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("replaces nothing without --force", async () => {
    const before = read("ca.crt");
    const again = await cert(["create-ca", "--dir", dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`${join(dir, "ca.crt")} exists already; --force replaces it`);
    expect(read("ca.crt")).toBe(before);
    const nodeBefore = read("node-2.key");
    const forced = await cert(["create-node", "--dir", dir, "--id", "2", "--host", "localhost", "--force"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain(`wrote ${join(dir, "node-2.crt")} and ${join(dir, "node-2.key")}`);
    expect(read("node-2.key")).not.toBe(nodeBefore);
    expect(mode("node-2.key")).toBe(0o600);
  });

  it("says what is missing or wrong", async () => {
    const noHost = await cert(["create-node", "--dir", dir, "--id", "3"]);
    expect(noHost.code).toBe(1);
    expect(noHost.stderr).toContain("give at least one --host");
    const noCa = await cert(["create-client", "--dir", join(root, "empty"), "--user", "bob"]);
    expect(noCa.code).toBe(1);
    expect(noCa.stderr).toContain("create it with: raftmq cert create-ca --dir");
    const badUser = await cert(["create-client", "--dir", dir, "--user", "../bob"]);
    expect(badUser.code).toBe(1);
    expect(badUser.stderr).toContain("cannot name a file");
    const badId = await cert(["create-node", "--dir", dir, "--id", "0", "--host", "localhost"]);
    expect(badId.code).not.toBe(0);
    expect(badId.stderr).toContain("--id must be an integer");
    const help = (await cert(["--help"])).stdout;
    for (const command of ["create-ca", "create-node", "create-client"]) expect(help).toContain(command);
  });
});
