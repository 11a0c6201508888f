import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { K8S_BASE, K8S_PRODUCTION } from "./src/deploy-paths.ts";
import { renderDeployment } from "./src/deployments.ts";
import { applyJsonPatch, JsonPatchError } from "./src/json-patch.ts";
import { validateK8sObject, validateRenderedObject } from "./src/k8s-schema.ts";
import { type K8sObject, KustomizeError, renderKustomization } from "./src/kustomize-render.ts";

function byKind(objects: K8sObject[], kind: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0] as K8sObject;
}

function tempKustomization(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "raftmq-kustomize-"));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

describe("kustomize rendering", () => {
  it("renders the base into the objects a platform team expects: the workload, its CA chain and one certificate per pod", () => {
    const kinds = renderKustomization(K8S_BASE)
      .map((o) => `${o.kind}/${o.metadata.name}`)
      .sort();
    expect(kinds).toEqual([
      "Certificate/raftmq-ca",
      "Certificate/raftmq-node-0",
      "Certificate/raftmq-node-1",
      "Certificate/raftmq-node-2",
      "ConfigMap/raftmq-config",
      "Issuer/raftmq-ca-issuer",
      "Issuer/raftmq-selfsigned",
      "PodDisruptionBudget/raftmq",
      "Service/raftmq",
      "Service/raftmq-headless",
      "ServiceAccount/raftmq",
      "StatefulSet/raftmq",
    ]);
  });

  it("applies the production overlay's namespace and patches on top of the base", () => {
    const base = renderKustomization(K8S_BASE);
    const prod = renderDeployment(K8S_PRODUCTION);
    const added = prod.filter((o) => !base.some((b) => b.kind === o.kind && b.metadata.name === o.metadata.name)).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(added.sort()).toEqual(["Certificate/raftmq-node-3", "Certificate/raftmq-node-4", "Secret/raftmq-bootstrap-admin"]);
    expect(prod).toHaveLength(base.length + added.length);
    for (const o of prod) expect(o.metadata.namespace, o.kind).toBe("raftmq");
    const sts = byKind(prod, "StatefulSet") as unknown as { spec: { replicas: number; volumeClaimTemplates: { spec: { storageClassName?: string } }[] } };
    expect(sts.spec.replicas).toBe(5);
    expect(sts.spec.volumeClaimTemplates[0]?.spec.storageClassName).toBe("fast-ssd");
    const config = byKind(prod, "ConfigMap") as unknown as { data: Record<string, string> };
    expect(config.data.RAFTMQ_INITIAL_CLUSTER_SIZE).toBe("5");
    // The base itself is untouched by rendering the overlay.
    expect((byKind(base, "StatefulSet") as unknown as { spec: { replicas: number } }).spec.replicas).toBe(3);
  });

  it("validates every rendered object of base and overlay against the Kubernetes schemas (cert-manager's by hand)", async () => {
    for (const dir of [K8S_BASE, K8S_PRODUCTION]) {
      for (const o of renderDeployment(dir)) {
        const result = await validateRenderedObject(o);
        expect(result.problems, `${dir}: ${o.kind}/${o.metadata.name}`).toEqual([]);
      }
    }
  });

  it("rejects a StatefulSet whose replicas is a string: the validator has teeth", async () => {
    const sts = byKind(renderKustomization(K8S_BASE), "StatefulSet");
    const broken = applyJsonPatch(sts, [{ op: "replace", path: "/spec/replicas", value: "three" }]);
    const result = await validateK8sObject(broken);
    expect(result.ok).toBe(false);
    expect(result.problems.join("\n")).toMatch(/replicas/);
    const noContainers = applyJsonPatch(sts, [{ op: "remove", path: "/spec/template/spec/containers/0/name" }]);
    expect((await validateK8sObject(noContainers)).ok).toBe(false);
  });

  it("rejects an object whose kind has no schema instead of passing it", async () => {
    const result = await validateK8sObject({ apiVersion: "apps/v1", kind: "StatefulSett", metadata: { name: "x" } });
    expect(result).toEqual({ ok: false, problems: ["no schema for apps/v1 StatefulSett"] });
  });

  it("refuses kustomization fields it does not implement, rather than ignoring them", () => {
    const dir = tempKustomization({
      "kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: x-\nresources: [a.yaml]\n",
      "a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    });
    expect(() => renderKustomization(dir)).toThrow(KustomizeError);
  });

  it("refuses a patch whose target is missing and duplicate objects", () => {
    const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n";
    const missing = tempKustomization({
      "kustomization.yaml": "kind: Kustomization\nresources: [a.yaml]\npatches:\n  - path: p.yaml\n    target: {kind: ConfigMap, name: b}\n",
      "a.yaml": cm,
      "p.yaml": "- op: replace\n  path: /data/k\n  value: w\n",
    });
    expect(() => renderKustomization(missing)).toThrow(/matches 0 objects/);
    const twice = tempKustomization({ "kustomization.yaml": "kind: Kustomization\nresources: [a.yaml, b.yaml]\n", "a.yaml": cm, "b.yaml": cm });
    expect(() => renderKustomization(twice)).toThrow(/defined twice/);
  });

  it("applies an inline patch, and refuses a patch entry with both a path and an inline patch", () => {
    const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n";
    const inline = tempKustomization({
      "kustomization.yaml": "kind: Kustomization\nresources: [a.yaml]\npatches:\n  - target: {kind: ConfigMap, name: a}\n    patch: |-\n      - op: replace\n        path: /data/k\n        value: w\n",
      "a.yaml": cm,
    });
    expect((renderKustomization(inline)[0] as unknown as { data: Record<string, string> }).data.k).toBe("w");
    const both = tempKustomization({
      "kustomization.yaml": "kind: Kustomization\nresources: [a.yaml]\npatches:\n  - target: {kind: ConfigMap, name: a}\n    path: p.yaml\n    patch: '[]'\n",
      "a.yaml": cm,
      "p.yaml": "[]\n",
    });
    expect(() => renderKustomization(both)).toThrow(/not both/);
  });

  it("generates a Secret from an env file as kustomize reads it, in the kustomization's namespace", () => {
    const kustomization = "kind: Kustomization\nnamespace: n\nsecretGenerator:\n  - name: s\n    envs: [s.env]\n    options:\n      disableNameSuffixHash: true\n";
    const dir = tempKustomization({ "kustomization.yaml": kustomization, "s.env": "# comment\n\n  password=a=b \r\nuser=me\n" });
    const [secret] = renderKustomization(dir) as unknown as { metadata: { name: string; namespace: string }; type: string; data: Record<string, string> }[];
    expect(secret?.metadata).toEqual({ name: "s", namespace: "n" });
    expect(secret?.type).toBe("Opaque");
    const decoded = Object.fromEntries(Object.entries(secret?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
    // Split at the first `=`, the value as written (trailing space kept, the line's \r not).
    expect(decoded).toEqual({ password: "a=b ", user: "me" });
    // The file can be supplied without being on disk.
    const given = renderKustomization(dir, { files: { [join(dir, "s.env")]: "password=x\n" } }) as unknown as { data: Record<string, string> }[];
    expect(given[0]?.data).toEqual({ password: Buffer.from("x").toString("base64") });
  });

  it("refuses generators it cannot render faithfully: a hashed name, a line without =, a missing file", () => {
    const hashed = tempKustomization({ "kustomization.yaml": "kind: Kustomization\nsecretGenerator:\n  - name: s\n    envs: [s.env]\n", "s.env": "a=b\n" });
    expect(() => renderKustomization(hashed)).toThrow(/disableNameSuffixHash/);
    const generator = "kind: Kustomization\nsecretGenerator:\n  - name: s\n    envs: [s.env]\n    options: {disableNameSuffixHash: true}\n";
    expect(() => renderKustomization(tempKustomization({ "kustomization.yaml": generator, "s.env": "PASSWORD\n" }))).toThrow(/not KEY=value/);
    expect(() => renderKustomization(tempKustomization({ "kustomization.yaml": generator }))).toThrow(KustomizeError);
  });
});

describe("JSON patch", () => {
  const doc = { a: { b: [1, 2, 3] }, c: "x" };

  it("adds, replaces and removes by pointer without touching the input", () => {
    const out = applyJsonPatch(doc, [
      { op: "add", path: "/a/b/1", value: 9 },
      { op: "add", path: "/a/b/-", value: 4 },
      { op: "replace", path: "/c", value: "y" },
      { op: "remove", path: "/a/b/0" },
      { op: "add", path: "/d~1e", value: true },
    ]);
    expect(out).toEqual({ a: { b: [9, 2, 3, 4] }, c: "y", "d/e": true });
    expect(doc).toEqual({ a: { b: [1, 2, 3] }, c: "x" });
  });

  it("fails on a replace or remove of a missing value and on a failed test", () => {
    expect(() => applyJsonPatch(doc, [{ op: "replace", path: "/missing", value: 1 }])).toThrow(JsonPatchError);
    expect(() => applyJsonPatch(doc, [{ op: "remove", path: "/a/b/3" }])).toThrow(JsonPatchError);
    expect(() => applyJsonPatch(doc, [{ op: "test", path: "/c", value: "z" }])).toThrow(JsonPatchError);
    expect(() => applyJsonPatch(doc, [{ op: "add", path: "/x/y", value: 1 }])).toThrow(JsonPatchError);
  });
});
