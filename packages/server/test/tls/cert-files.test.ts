// Dev certificates on disk: made once, kept while they still fit, made again when they do not.
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CertificateFileExistsError, caPaths, clientCertificatePaths, createCa, nodeIdFromSubjectAltName, writeCertificateFiles, writeDevCertificates } from "../../src/tls/index.ts";

const root = mkdtempSync(join(tmpdir(), "raftmq-certs-"));
let n = 0;
const freshDir = () => join(root, `dir-${++n}`);

afterAll(() => rmSync(root, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o777;
const HOSTS = ["127.0.0.1", "::1", "localhost"];

describe("writeDevCertificates", () => {
  it("writes a CA, a certificate per node and per user, keys readable by the owner only", async () => {
    const dir = freshDir();
    const certs = await writeDevCertificates(dir, { nodeIds: [1, 2, 3], hosts: HOSTS, users: ["admin"] });
    expect(certs.ca).toEqual({ certPath: join(dir, "ca.crt"), keyPath: join(dir, "ca.key") });
    expect([...certs.nodes.keys()]).toEqual([1, 2, 3]);
    expect(certs.nodes.get(2)).toEqual({ certPath: join(dir, "node-2.crt"), keyPath: join(dir, "node-2.key") });
    expect(certs.clients.get("admin")).toEqual({ certPath: join(dir, "client-admin.crt"), keyPath: join(dir, "client-admin.key") });
    expect(certs.written).toHaveLength(2 * 5);
    for (const path of certs.written) expect(mode(path), path).toBe(path.endsWith(".key") ? 0o600 : 0o644);
    expect(mode(dir)).toBe(0o700);

    const ca = new X509Certificate(readFileSync(certs.ca.certPath));
    for (const [id, paths] of certs.nodes) {
      const cert = new X509Certificate(readFileSync(paths.certPath));
      expect(cert.checkIssued(ca) && cert.verify(ca.publicKey)).toBe(true);
      expect(nodeIdFromSubjectAltName(cert.subjectAltName)).toBe(id);
    }
    const admin = new X509Certificate(readFileSync(join(dir, "client-admin.crt")));
    expect(admin.subject).toBe("CN=admin");
    expect(admin.verify(ca.publicKey)).toBe(true);
  });

  it("keeps certificates that still fit, and adds only what is missing", async () => {
    const dir = freshDir();
    await writeDevCertificates(dir, { nodeIds: [1, 2], hosts: HOSTS });
    const before = readFileSync(join(dir, "node-1.crt"), "utf8");
    const again = await writeDevCertificates(dir, { nodeIds: [1, 2], hosts: HOSTS });
    expect(again.written).toEqual([]);
    const more = await writeDevCertificates(dir, { nodeIds: [1, 2, 3], hosts: ["localhost"], users: ["bob"] });
    expect(more.written.sort()).toEqual(["client-bob.crt", "client-bob.key", "node-3.crt", "node-3.key"].map((f) => join(dir, f)));
    expect(readFileSync(join(dir, "node-1.crt"), "utf8")).toBe(before);
  });

  it("makes a node certificate again when it does not cover a host asked for", async () => {
    const dir = freshDir();
    await writeDevCertificates(dir, { nodeIds: [1], hosts: ["127.0.0.1"] });
    const r = await writeDevCertificates(dir, { nodeIds: [1], hosts: ["127.0.0.1", "node1.example"] });
    expect(r.written.sort()).toEqual([join(dir, "node-1.crt"), join(dir, "node-1.key")]);
    expect(new X509Certificate(readFileSync(join(dir, "node-1.crt"))).checkHost("node1.example")).toBe("node1.example");
  });

  it("makes everything again when the CA is damaged, and a certificate of another CA is replaced", async () => {
    const dir = freshDir();
    await writeDevCertificates(dir, { nodeIds: [1, 2], hosts: HOSTS });
    writeFileSync(join(dir, "ca.key"), "not a key");
    const r = await writeDevCertificates(dir, { nodeIds: [1, 2], hosts: HOSTS });
    expect(r.written).toHaveLength(6);
    const ca = new X509Certificate(readFileSync(join(dir, "ca.crt")));
    expect(new X509Certificate(readFileSync(join(dir, "node-2.crt"))).verify(ca.publicKey)).toBe(true);

    // A node certificate signed by some other CA is not kept.
    const elsewhere = freshDir();
    await writeDevCertificates(elsewhere, { nodeIds: [2], hosts: HOSTS });
    writeFileSync(join(dir, "node-2.crt"), readFileSync(join(elsewhere, "node-2.crt")));
    writeFileSync(join(dir, "node-2.key"), readFileSync(join(elsewhere, "node-2.key")));
    const fixed = await writeDevCertificates(dir, { nodeIds: [1, 2], hosts: HOSTS });
    expect(fixed.written.sort()).toEqual([join(dir, "node-2.crt"), join(dir, "node-2.key")]);
  });

  it("refuses a user name that cannot be a file name before writing anything", async () => {
    const dir = freshDir();
    await expect(writeDevCertificates(dir, { nodeIds: [1], hosts: HOSTS, users: ["../evil"] })).rejects.toThrow(/cannot name a file/);
    expect(() => statSync(dir)).toThrow();
    expect(() => clientCertificatePaths(dir, ".hidden")).toThrow(/cannot name a file/);
  });
});

describe("writeCertificateFiles", () => {
  it("does not replace a certificate unless asked to", async () => {
    const dir = freshDir();
    const first = await createCa();
    await writeCertificateFiles(caPaths(dir), first);
    await expect(writeCertificateFiles(caPaths(dir), await createCa())).rejects.toBeInstanceOf(CertificateFileExistsError);
    expect(readFileSync(join(dir, "ca.crt"), "utf8")).toBe(first.certPem);
    const second = await createCa();
    await writeCertificateFiles(caPaths(dir), second, { overwrite: true });
    expect(readFileSync(join(dir, "ca.key"), "utf8")).toBe(second.keyPem);
    expect(mode(join(dir, "ca.key"))).toBe(0o600);
  });
});
