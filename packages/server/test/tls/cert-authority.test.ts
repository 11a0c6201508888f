// The certificates of the cluster's CA, as Node's TLS stack and an independent X.509 parser read them.
import "reflect-metadata";
import { createPrivateKey, X509Certificate } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { createCa, createClientCertificate, createNodeCertificate, nodeIdFromSubjectAltName } from "../../src/tls/index.ts";

const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

function keyUsages(pem: string): number {
  return new x509.X509Certificate(pem).getExtension(x509.KeyUsagesExtension)?.usages ?? 0;
}

describe("createCa", () => {
  it("is a self-signed CA that may sign certificates and CRLs, ECDSA P-256 with SHA-256", async () => {
    const ca = await createCa({ commonName: "test CA", validDays: 30 });
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe("CN=test CA\nO=raftmq");
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(keyUsages(ca.certPem)).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    const parsed = new x509.X509Certificate(ca.certPem);
    expect(parsed.signatureAlgorithm).toMatchObject({ name: "ECDSA", hash: { name: "SHA-256" } });
    expect(parsed.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: true, critical: true });
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThan(30.1);
  });

  it("writes the private key as PKCS#8 PEM of a P-256 key", async () => {
    const ca = await createCa();
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const key = createPrivateKey(ca.keyPem);
    expect(key.asymmetricKeyType).toBe("ec");
    expect(key.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(new X509Certificate(ca.certPem).checkPrivateKey(key)).toBe(true);
  });

  it("refuses a validity out of range and an empty name", async () => {
    await expect(createCa({ validDays: 0 })).rejects.toThrow(/validDays/);
    await expect(createCa({ validDays: 1.5 })).rejects.toThrow(/validDays/);
    await expect(createCa({ commonName: "" })).rejects.toThrow(/common name/);
  });
});

describe("createNodeCertificate", () => {
  it("names the node by URI, serves its hosts, and works on both ends of mutual TLS", async () => {
    const ca = await createCa();
    const node = await createNodeCertificate(ca, { nodeId: 3, hosts: ["127.0.0.1", "::1", "localhost", "raftmq-2.raftmq.default.svc"] });
    const cert = new X509Certificate(node.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.subject).toBe("CN=raftmq-node-3\nO=raftmq");
    expect(cert.subjectAltName?.split(", ")).toEqual(["URI:urn:raftmq:node:3", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1", "DNS:localhost", "DNS:raftmq-2.raftmq.default.svc"]);
    expect(nodeIdFromSubjectAltName(cert.subjectAltName)).toBe(3);
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(cert.checkIP("::1")).toBe("::1");
    expect(cert.checkHost("localhost")).toBe("localhost");
    expect(cert.checkHost("example.com")).toBeUndefined();
    expect(cert.keyUsage).toEqual([SERVER_AUTH, CLIENT_AUTH]);
    expect(keyUsages(node.certPem)).toBe(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
    expect(cert.checkPrivateKey(createPrivateKey(node.keyPem))).toBe(true);
    // The chain links by key identifier too, as verifiers that build chains look for it.
    const parsed = new x509.X509Certificate(node.certPem);
    const caSki = new x509.X509Certificate(ca.certPem).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    expect(parsed.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(caSki);
  });

  it("does not verify against another CA", async () => {
    const [ca, other] = await Promise.all([createCa(), createCa()]);
    const cert = new X509Certificate((await createNodeCertificate(ca, { nodeId: 1, hosts: ["localhost"] })).certPem);
    const otherCert = new X509Certificate(other.certPem);
    expect(cert.verify(otherCert.publicKey)).toBe(false);
  });

  it("refuses a bad node id, host or CA", async () => {
    const ca = await createCa();
    await expect(createNodeCertificate(ca, { nodeId: 0, hosts: [] })).rejects.toThrow(/node id/);
    await expect(createNodeCertificate(ca, { nodeId: 1, hosts: ["not a host"] })).rejects.toThrow(/neither an IP address nor a DNS name/);
    const leaf = await createNodeCertificate(ca, { nodeId: 1, hosts: ["localhost"] });
    await expect(createNodeCertificate(leaf, { nodeId: 2, hosts: [] })).rejects.toThrow(/not a CA certificate/);
    const other = await createCa();
    await expect(createNodeCertificate({ certPem: ca.certPem, keyPem: other.keyPem }, { nodeId: 2, hosts: [] })).rejects.toThrow(/does not belong/);
  });
});

describe("createClientCertificate", () => {
  it("names the user by common name and is for client authentication only", async () => {
    const ca = await createCa();
    const alice = await createClientCertificate(ca, { user: "alice" });
    const cert = new X509Certificate(alice.certPem);
    expect(cert.subject).toBe("CN=alice");
    expect(cert.keyUsage).toEqual([CLIENT_AUTH]);
    expect(cert.subjectAltName).toBeUndefined();
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    await expect(createClientCertificate(ca, { user: "" })).rejects.toThrow(/user name/);
    await expect(createClientCertificate(ca, { user: "x".repeat(65) })).rejects.toThrow(/user name/);
  });
});

describe("nodeIdFromSubjectAltName", () => {
  it("reads exactly one node URI and nothing else", () => {
    expect(nodeIdFromSubjectAltName("URI:urn:raftmq:node:12, DNS:localhost")).toBe(12);
    expect(nodeIdFromSubjectAltName("DNS:localhost, URI:urn:raftmq:node:7")).toBe(7);
    expect(nodeIdFromSubjectAltName("DNS:urn:raftmq:node:7")).toBeUndefined();
    expect(nodeIdFromSubjectAltName("URI:urn:raftmq:node:1, URI:urn:raftmq:node:2")).toBeUndefined();
    expect(nodeIdFromSubjectAltName("URI:urn:raftmq:node:0")).toBeUndefined();
    expect(nodeIdFromSubjectAltName('URI:"urn:raftmq:node:1, x"')).toBeUndefined();
    expect(nodeIdFromSubjectAltName(undefined)).toBeUndefined();
  });
});
