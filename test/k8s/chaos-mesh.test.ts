// Chaos Mesh's CRDs have no schema package: these checks hold each experiment to the fields its
// kind requires and aim it at the StatefulSet's pods; the workload Job gets the full schema check.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CHAOS_MESH, K8S_BASE } from "./src/deploy-paths.ts";
import { validateK8sObject } from "./src/k8s-schema.ts";
import { asK8sObject, type K8sObject, readYamlObjects, renderKustomization } from "./src/kustomize-render.ts";
import { pick } from "./src/typed-objects.ts";

const ACTIONS: Record<string, readonly string[]> = {
  PodChaos: ["pod-kill", "pod-failure", "container-kill"],
  NetworkChaos: ["partition", "delay", "loss", "duplicate", "corrupt", "bandwidth"],
  IOChaos: ["latency", "fault", "attrOverride", "mistake"],
};
const MODES = ["one", "all", "fixed", "fixed-percent", "random-max-percent"];
const DURATION = /^(\d+(ms|s|m|h))+$/;

const objects: K8sObject[] = readdirSync(CHAOS_MESH)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .flatMap((f) => readYamlObjects(join(CHAOS_MESH, f)).map((raw, i) => asK8sObject(raw, `${f}#${i}`)));
const experiments = objects.filter((o) => o.apiVersion === "chaos-mesh.org/v1alpha1");
const sts = pick(renderKustomization(K8S_BASE), "StatefulSet", "raftmq");
const podLabels = sts.spec?.template.metadata?.labels ?? {};
const dataDir = sts.spec?.template.spec?.containers[0]?.volumeMounts?.find((m) => m.name === "data")?.mountPath;

function record(value: unknown): Record<string, unknown> {
  expect(typeof value === "object" && value !== null && !Array.isArray(value)).toBe(true);
  return value as Record<string, unknown>;
}

function selectsRaftmqPods(selector: unknown): boolean {
  const labels = record(record(selector).labelSelectors);
  return Object.entries(labels).every(([k, v]) => podLabels[k] === v) && Object.keys(labels).length > 0;
}

describe("Chaos Mesh experiments", () => {
  it("cover pod kill and failure, network partition, delay and loss, and IO latency and faults", () => {
    const covered = experiments.map((o) => `${o.kind}/${String(record(o.spec).action)}`).sort();
    expect(covered).toEqual(["IOChaos/fault", "IOChaos/latency", "NetworkChaos/delay", "NetworkChaos/loss", "NetworkChaos/partition", "PodChaos/pod-failure", "PodChaos/pod-kill"]);
  });

  it("aim every experiment at the StatefulSet's pods with a valid action, mode and duration", () => {
    for (const o of experiments) {
      const spec = record(o.spec);
      const name = `${o.kind}/${o.metadata.name}`;
      expect(ACTIONS[o.kind], name).toContain(spec.action);
      expect(MODES, name).toContain(spec.mode);
      expect(selectsRaftmqPods(spec.selector), name).toBe(true);
      // Every fault but an instant kill ends by itself.
      if (spec.action !== "pod-kill") expect(String(spec.duration), name).toMatch(DURATION);
    }
  });

  it("fill in what each action needs", () => {
    for (const o of experiments) {
      const spec = record(o.spec);
      const name = `${o.kind}/${o.metadata.name}`;
      if (o.kind === "NetworkChaos" && spec.action === "partition") expect(selectsRaftmqPods(record(spec.target).selector), name).toBe(true);
      if (spec.action === "delay") expect(String(record(spec.delay).latency), name).toMatch(DURATION);
      if (spec.action === "loss") expect(Number(record(spec.loss).loss), name).toBeGreaterThan(0);
      if (o.kind === "IOChaos") {
        expect(spec.volumePath, name).toBe(dataDir);
        expect(spec.containerNames, name).toEqual(["raftmq"]);
        expect(Number(spec.percent), name).toBeGreaterThan(0);
        if (spec.action === "latency") expect(String(spec.delay), name).toMatch(DURATION);
        if (spec.action === "fault") expect(Number.isInteger(spec.errno), name).toBe(true);
      }
    }
  });
});

describe("chaos workload Job", () => {
  const job = pick(objects, "Job", "raftmq-chaos-workload");

  it("validates against the Kubernetes schema", async () => {
    expect((await validateK8sObject(job)).problems).toEqual([]);
  });

  it("runs the workload once against the client Service, bounded in time", () => {
    const container = job.spec?.template.spec?.containers[0];
    expect(container?.command).toEqual(["pnpm", "chaos", "--workload-only", "--addresses", "raftmq:7600"]);
    expect(job.spec?.backoffLimit).toBe(0);
    expect(job.spec?.activeDeadlineSeconds).toBeGreaterThan(0);
    expect(job.spec?.template.spec?.securityContext?.runAsNonRoot).toBe(true);
    const client = pick(renderKustomization(K8S_BASE), "Service", "raftmq");
    expect(container?.command?.at(-1)).toBe(`${client.metadata?.name}:${client.spec?.ports?.[0]?.port}`);
  });
});
