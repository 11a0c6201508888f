// The secure deployment: cert-manager's CA chain, one certificate per ordinal naming the node id
// that pod starts as (read through the node's own config and certificate code), the files where
// the pod's env says they are, and the bootstrap administrator's password kept out of ConfigMaps.
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeIdOfCertificate, resolveNodeConfig } from "@raftmq/server";
import { describe, expect, it } from "vitest";
import { validateCertManagerObject } from "./src/cert-manager-schema.ts";
import { K8S_BASE, K8S_PRODUCTION } from "./src/deploy-paths.ts";
import { DEPLOYMENTS, PRODUCTION_ADMIN_ENV_FILE, renderDeployment, TEST_ADMIN_PASSWORD } from "./src/deployments.ts";
import { applyJsonPatch } from "./src/json-patch.ts";
import { KustomizeError, renderKustomization } from "./src/kustomize-render.ts";
import { podLaunch, projectedSecretFiles } from "./src/statefulset-pod.ts";
import { all, type ICertificate, pick } from "./src/typed-objects.ts";

const SET = "raftmq";
const CA_ISSUER = "raftmq-ca-issuer";
const ADMIN_SECRET = "raftmq-bootstrap-admin";

/** The node id a Certificate names, read as the node reads a peer's certificate. */
function certificateNodeId(cert: ICertificate): number {
  return nodeIdOfCertificate({ subjectaltname: (cert.spec.uris ?? []).map((u) => `URI:${u}`).join(", ") });
}

for (const deployment of DEPLOYMENTS) {
  describe(`${deployment.label} TLS`, () => {
    const objects = renderDeployment(deployment.dir);
    const sts = pick(objects, "StatefulSet", SET);
    const replicas = sts.spec?.replicas ?? 0;
    const certificates = all(objects, "Certificate");
    const nodeCertificates = certificates.filter((c) => c.spec.issuerRef.name === CA_ISSUER);
    const tls = projectedSecretFiles(objects, SET, "tls");
    const launches = Array.from({ length: replicas }, (_, ordinal) => podLaunch(objects, SET, ordinal, deployment.namespace, deployment.externalSecrets));

    it("holds every Issuer and Certificate to cert-manager's fields", () => {
      const kinds = objects.filter((o) => o.apiVersion.startsWith("cert-manager.io/"));
      expect(kinds.length).toBeGreaterThan(0);
      for (const o of kinds) expect(validateCertManagerObject(o).problems, `${o.kind}/${o.metadata.name}`).toEqual([]);
    });

    it("signs node certificates with a CA that a self-signed Issuer made", () => {
      const selfSigned = all(objects, "Issuer").filter((i) => i.spec.selfSigned !== undefined);
      expect(selfSigned).toHaveLength(1);
      const caCert = certificates.filter((c) => c.spec.isCA === true);
      expect(caCert).toHaveLength(1);
      expect(caCert[0]?.spec.issuerRef).toEqual({ name: selfSigned[0]?.metadata.name, kind: "Issuer", group: "cert-manager.io" });
      // Renewed with the same key, so certificates signed before a renewal still verify.
      expect(caCert[0]?.spec.privateKey?.rotationPolicy).toBe("Never");
      const caIssuer = pick(objects, "Issuer", CA_ISSUER);
      expect(caIssuer.spec.ca?.secretName).toBe(caCert[0]?.spec.secretName);
      expect(nodeCertificates.length + caCert.length).toBe(certificates.length);
      for (const c of nodeCertificates) {
        expect(c.spec.issuerRef, c.metadata.name).toEqual({ name: CA_ISSUER, kind: "Issuer", group: "cert-manager.io" });
        expect(c.spec.isCA ?? false, c.metadata.name).toBe(false);
        expect(c.spec.usages, c.metadata.name).toEqual(expect.arrayContaining(["server auth", "client auth"]));
      }
    });

    it("gives each pod, at the paths its env names, a certificate naming the node id it starts as", () => {
      const secretOfOrdinal = new Set<string>();
      for (const [ordinal, launch] of launches.entries()) {
        const config = resolveNodeConfig([], launch.env);
        expect(config.insecure, launch.podName).toBe(false);
        const secrets = new Set<string>();
        for (const [path, key] of [
          [config.tlsCaFile, "ca.crt"],
          [config.tlsCertFile, "tls.crt"],
          [config.tlsKeyFile, "tls.key"],
        ] as const) {
          expect(path.startsWith(`${tls.mountPath}/`), `${launch.podName}: ${path}`).toBe(true);
          const file = tls.files.find((f) => f.path === path.slice(tls.mountPath.length + 1));
          expect(file?.key, `${launch.podName}: ${path}`).toBe(key);
          secrets.add(file?.secret ?? "");
        }
        // All three files of a pod come from one Secret, and no two pods share one.
        expect(secrets.size, launch.podName).toBe(1);
        const [secret = ""] = secrets;
        expect(secretOfOrdinal.has(secret), secret).toBe(false);
        secretOfOrdinal.add(secret);

        const cert = nodeCertificates.find((c) => c.spec.secretName === secret);
        expect(cert, `${launch.podName}: Certificate of Secret ${secret}`).toBeDefined();
        if (cert === undefined) continue;
        expect(config.nodeId).toBe(ordinal + 1);
        expect(certificateNodeId(cert), cert.metadata.name).toBe(config.nodeId);
        // The name peers and redirected clients dial, and the client Service's names.
        expect(cert.spec.dnsNames, cert.metadata.name).toEqual(expect.arrayContaining([config.advertiseHost, `raftmq.${deployment.namespace}.svc.cluster.local`, "raftmq"]));
        expect(config.advertiseHost).toBe(`${launch.podName}.raftmq-headless.${deployment.namespace}.svc.cluster.local`);
      }
    });

    it("has one certificate per replica, each naming one distinct node, and mounts them read-only", () => {
      expect(nodeCertificates).toHaveLength(replicas);
      expect(new Set(nodeCertificates.map(certificateNodeId)).size).toBe(replicas);
      expect(nodeCertificates.map(certificateNodeId)).not.toContain(0);
      expect(new Set(tls.files.map((f) => f.secret))).toEqual(new Set(nodeCertificates.map((c) => c.spec.secretName)));
      expect(tls.readOnly).toBe(true);
    });

    it("mounts no CA key into the pods", () => {
      const caSecret = pick(objects, "Issuer", CA_ISSUER).spec.ca?.secretName;
      const volumes = sts.spec?.template.spec?.volumes ?? [];
      const mounted = volumes.flatMap((v) => [v.secret?.secretName, ...(v.projected?.sources ?? []).map((s) => s.secret?.name)]);
      expect(mounted).not.toContain(caSecret);
      // From each node Secret only its certificate, its key and the CA's certificate.
      for (const secret of new Set(tls.files.map((f) => f.secret))) {
        expect(tls.files.filter((f) => f.secret === secret).map((f) => f.key).sort(), secret).toEqual(["ca.crt", "tls.crt", "tls.key"]);
      }
    });

    it("takes the bootstrap administrator's password from a Secret, and no secret value appears in a ConfigMap", () => {
      const container = sts.spec?.template.spec?.containers[0];
      const passwordEnv = container?.env?.find((e) => e.name === "RAFTMQ_BOOTSTRAP_ADMIN_PASSWORD");
      expect(passwordEnv?.value).toBeUndefined();
      expect(passwordEnv?.valueFrom?.secretKeyRef).toMatchObject({ name: ADMIN_SECRET, key: "password" });
      for (const launch of launches) {
        expect(launch.env.RAFTMQ_BOOTSTRAP_ADMIN_PASSWORD).toBe(TEST_ADMIN_PASSWORD);
        expect(launch.env.RAFTMQ_BOOTSTRAP_ADMIN_USER ?? "").not.toBe("");
      }

      const secretValues = [
        TEST_ADMIN_PASSWORD,
        ...all(objects, "Secret").flatMap((s) => [...Object.values(s.data ?? {}).map((v) => Buffer.from(v, "base64").toString("utf8")), ...Object.values(s.stringData ?? {})]),
      ];
      for (const cm of all(objects, "ConfigMap")) {
        for (const [key, value] of Object.entries(cm.data ?? {})) {
          expect(key, `${cm.metadata?.name}`).not.toMatch(/PASSWORD$|SECRET|TOKEN/);
          expect(value, `${cm.metadata?.name}.${key}`).not.toContain("-----BEGIN");
          for (const secret of secretValues) expect(value.includes(secret), `${cm.metadata?.name}.${key} holds a secret value`).toBe(false);
        }
      }
      // Nor a literal env value of the container.
      for (const e of container?.env ?? []) for (const secret of secretValues) expect((e.value ?? "").includes(secret), e.name).toBe(false);
    });
  });
}

describe("bootstrap administrator Secret", () => {
  it("is generated in production from the git-ignored env file, under the name the StatefulSet reads", () => {
    const secret = pick(renderDeployment(K8S_PRODUCTION), "Secret", ADMIN_SECRET);
    expect(secret.metadata?.namespace).toBe("raftmq");
    expect(Buffer.from(secret.data?.password ?? "", "base64").toString("utf8")).toBe(TEST_ADMIN_PASSWORD);
    const ignored = readFileSync(join(K8S_PRODUCTION, ".gitignore"), "utf8").split("\n");
    expect(ignored).toContain(PRODUCTION_ADMIN_ENV_FILE.slice(K8S_PRODUCTION.length + 1));
  });

  it("is never shipped with a default: production does not render without the file, and the base renders none", () => {
    const root = mkdtempSync(join(tmpdir(), "raftmq-no-password-"));
    try {
      // A copy without the file, so an operator's real file on this machine cannot hide the failure.
      cpSync(join(K8S_BASE, "..", ".."), join(root, "deploy"), { recursive: true, filter: (src) => !src.endsWith("bootstrap-admin.env") });
      expect(() => renderKustomization(join(root, "deploy/k8s/overlays/production"))).toThrow(KustomizeError);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    expect(all(renderDeployment(K8S_BASE), "Secret")).toEqual([]);
  });
});

describe("cert-manager schema checks", () => {
  const cert = pick(renderDeployment(K8S_BASE), "Certificate", "raftmq-node-0");

  it("have teeth: a missing secretName, an unknown usage, a bad duration or a typo'd field fail", () => {
    expect(validateCertManagerObject(cert).ok).toBe(true);
    const broken = [
      applyJsonPatch(cert, [{ op: "remove", path: "/spec/secretName" }]),
      applyJsonPatch(cert, [{ op: "replace", path: "/spec/usages/0", value: "serverAuth" }]),
      applyJsonPatch(cert, [{ op: "replace", path: "/spec/duration", value: "90d" }]),
      applyJsonPatch(cert, [{ op: "add", path: "/spec/dnsName", value: ["x"] }]),
      applyJsonPatch(cert, [{ op: "replace", path: "/spec/privateKey/size", value: 2048 }]),
      applyJsonPatch(cert, [{ op: "remove", path: "/spec/issuerRef/name" }]),
    ];
    for (const b of broken) expect(validateCertManagerObject(b).ok, JSON.stringify(b.spec)).toBe(false);
    const issuer = { apiVersion: "cert-manager.io/v1", kind: "Issuer", metadata: { name: "x" }, spec: { selfSigned: {}, ca: { secretName: "y" } } };
    expect(validateCertManagerObject(issuer).problems.join()).toMatch(/exactly one/);
    expect(validateCertManagerObject({ ...issuer, kind: "Certificat" }).ok).toBe(false);
  });
});
