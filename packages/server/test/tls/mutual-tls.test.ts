// The certificates do their job on a real TLS server that demands a client certificate: a node
// certificate of the cluster's CA gets in, one of another CA and none at all do not.
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CertificateWithKey, createCa, createClientCertificate, createNodeCertificate, nodeIdFromSubjectAltName } from "../../src/tls/index.ts";

let ca: CertificateWithKey;
let server: tls.Server;
let port: number;
const clientErrors: string[] = [];
/** Subjects of the peers the server let in. */
const accepted: string[] = [];

beforeAll(async () => {
  ca = await createCa();
  const serverCert = await createNodeCertificate(ca, { nodeId: 1, hosts: ["127.0.0.1", "localhost"] });
  server = tls.createServer({ requestCert: true, rejectUnauthorized: true, ca: ca.certPem, cert: serverCert.certPem, key: serverCert.keyPem }, (socket) => {
    // The server names the peer it accepted, by the identity its certificate carries.
    const peer = socket.getPeerX509Certificate();
    accepted.push(peer?.subject ?? "none");
    socket.end(`hello node ${nodeIdFromSubjectAltName(peer?.subjectAltName)}`);
  });
  server.on("tlsClientError", (err) => clientErrors.push(err.message));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** Connects with `identity`; resolves with what the server said, or the error that ended the connection. */
function talk(identity: CertificateWithKey | null, options: tls.ConnectionOptions = {}): Promise<{ said: string; error?: string }> {
  return new Promise((resolve) => {
    let said = "";
    const socket = tls.connect({ host: "127.0.0.1", port, ca: ca.certPem, ...(identity === null ? {} : { cert: identity.certPem, key: identity.keyPem }), ...options });
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      said += chunk;
    });
    socket.on("error", (err) => resolve({ said, error: err.message }));
    socket.on("close", () => resolve({ said }));
  });
}

describe("mutual TLS with the cluster's certificates", () => {
  it("accepts a node certificate of the same CA, and the server learns the node id", async () => {
    const peer = await createNodeCertificate(ca, { nodeId: 2, hosts: ["127.0.0.1"] });
    const r = await talk(peer);
    expect(r.error).toBeUndefined();
    expect(r.said).toBe("hello node 2");
  });

  it("accepts a user certificate of the same CA", async () => {
    const alice = await createClientCertificate(ca, { user: "alice" });
    const r = await talk(alice);
    expect(r.error).toBeUndefined();
    expect(r.said).toBe("hello node undefined");
  });

  it("rejects a node certificate of another CA", async () => {
    const before = accepted.length;
    const stranger = await createNodeCertificate(await createCa(), { nodeId: 2, hosts: ["127.0.0.1"] });
    const r = await talk(stranger);
    // Under TLS 1.3 the client finishes its side of the handshake first: it sees the server hang
    // up rather than a handshake error. The server never let it in.
    expect(r.said).toBe("");
    expect(accepted.slice(before)).toEqual([]);
  });

  it("rejects a client without a certificate", async () => {
    const before = clientErrors.length;
    const admitted = accepted.length;
    const r = await talk(null);
    expect(r.said).toBe("");
    expect(accepted.slice(admitted)).toEqual([]);
    await expect.poll(() => clientErrors.slice(before).join("\n")).toMatch(/peer did not return a certificate|certificate required/i);
  });

  it("lets the client check the server's host name against its subjectAltName", async () => {
    const peer = await createNodeCertificate(ca, { nodeId: 2, hosts: ["127.0.0.1"] });
    expect((await talk(peer, { servername: "localhost" })).said).toBe("hello node 2");
    const wrong = await talk(peer, { servername: "example.com" });
    expect(wrong.error).toMatch(/example\.com/);
  });
});
