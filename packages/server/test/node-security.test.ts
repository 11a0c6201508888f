// The node's TLS setup refuses, before anything listens, certificate files that cannot work: a
// certificate of another node, of another CA, a key of another certificate. A StatefulSet pod's
// certificate covers the later ids of its ordinal (a pod that lost its volume rejoins under one).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sameStatefulSetSlot } from "../src/raftmq-node.ts";
import { exactId, TlsSetupError, tlsSecurity } from "../src/security/node-security.ts";
import { nodeIdOf } from "../src/statefulset-identity.ts";
import { createCa, createClientCertificate, createNodeCertificate } from "../src/tls/index.ts";

const dir = mkdtempSync(join(tmpdir(), "raftmq-node-security-"));

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function files(caFile: string, certFile: string, keyFile: string) {
  return { caFile, certFile, keyFile, clientCertFile: "", clientKeyFile: "", clientCaFile: "", clientCertAuth: "optional" as const, refreshMs: 60_000 };
}

describe("tlsSecurity", () => {
  it("takes a node's own certificate and refuses another node's, another CA's, a user's and a foreign key", async () => {
    const ca = await createCa();
    const other = await createCa({ commonName: "other" });
    const n1 = await createNodeCertificate(ca, { nodeId: 1, hosts: ["127.0.0.1"] });
    const n2 = await createNodeCertificate(ca, { nodeId: 2, hosts: ["127.0.0.1"] });
    const foreign = await createNodeCertificate(other, { nodeId: 1, hosts: ["127.0.0.1"] });
    const user = await createClientCertificate(ca, { user: "alice" });
    const caFile = write("ca.crt", ca.certPem);
    const [c1, k1, c2, k2] = [write("n1.crt", n1.certPem), write("n1.key", n1.keyPem), write("n2.crt", n2.certPem), write("n2.key", n2.keyPem)];

    const ok = tlsSecurity(files(caFile, c1, k1), 1);
    expect(ok.insecure).toBe(false);
    expect(ok.covers(1, 1)).toBe(true);
    expect(() => tlsSecurity(files(caFile, c2, k2), 1)).toThrow(/names node 2, but this is node 1/);
    expect(() => tlsSecurity(files(caFile, write("f.crt", foreign.certPem), write("f.key", foreign.keyPem)), 1)).toThrow(/is not signed by the CA/);
    expect(() => tlsSecurity(files(caFile, write("u.crt", user.certPem), write("u.key", user.keyPem)), 1)).toThrow(/names no node id/);
    expect(() => tlsSecurity(files(caFile, c1, k2), 1)).toThrow(TlsSetupError);
    expect(() => tlsSecurity(files(caFile, c1, join(dir, "missing.key")), 1)).toThrow(/cannot read node key/);
  });

  it("covers exact ids only, unless told that a StatefulSet slot's later ids are the same pod", () => {
    const later = nodeIdOf(2, 1);
    expect(exactId(3, later)).toBe(false);
    expect(exactId(0, 0)).toBe(false);
    expect(sameStatefulSetSlot(nodeIdOf(2, 0), later)).toBe(true);
    expect(sameStatefulSetSlot(nodeIdOf(1, 0), later)).toBe(false);
    expect(sameStatefulSetSlot(0, later)).toBe(false);
  });
});
