// What a platform team checks before running raftmq: security, probes on the node's real health
// endpoints and ports, disruption budget, peer discovery, and the identity the pods derive.
import { describe, expect, it } from "vitest";
import { envName, NODE_OPTIONS, resolveNodeConfig, resolveStatefulSetIdentity } from "@raftmq/server";
import { DEPLOYMENTS, renderDeployment } from "./src/deployments.ts";
import type { K8sObject } from "./src/kustomize-render.ts";
import { podLaunch } from "./src/statefulset-pod.ts";
import { pick } from "./src/typed-objects.ts";

function nodeDefault(name: string): string {
  const spec = NODE_OPTIONS.find((o) => o.name === name);
  if (spec === undefined) throw new Error(`node-config has no option ${name}`);
  return spec.defaultText;
}

const PORTS = {
  client: Number(nodeDefault("client-port")),
  peer: Number(nodeDefault("peer-port")),
  http: Number(nodeDefault("http-port")),
  amqps: Number(nodeDefault("amqps-port")),
};
const HEALTH_PATHS = new Set(["/healthz", "/readyz"]);
/** RAFTMQ_ variables that are no node option: the node reads a secret from its environment only; the preStop hook reads its budget. */
const NOT_OPTIONS = new Set(["RAFTMQ_BOOTSTRAP_ADMIN_PASSWORD", "RAFTMQ_PRESTOP_TIMEOUT_MS"]);

for (const { label, dir, namespace, externalSecrets } of DEPLOYMENTS) {
  describe(`${label} manifests`, () => {
    const objects: K8sObject[] = renderDeployment(dir);
    const sts = pick(objects, "StatefulSet", "raftmq");
    const pod = sts.spec?.template.spec;
    const container = pod?.containers.find((c) => c.name === "raftmq");
    const config = pick(objects, "ConfigMap", "raftmq-config").data ?? {};

    it("runs as non-root with a read-only root filesystem and no capabilities", () => {
      expect(pod?.securityContext?.runAsNonRoot).toBe(true);
      expect(pod?.securityContext?.runAsUser).toBeGreaterThan(0);
      expect(container?.securityContext?.readOnlyRootFilesystem).toBe(true);
      expect(container?.securityContext?.allowPrivilegeEscalation).toBe(false);
      expect(container?.securityContext?.capabilities?.drop).toEqual(["ALL"]);
      expect(pod?.automountServiceAccountToken).toBe(false);
    });

    it("names its container ports with the node's default ports and sets the same in its config", () => {
      const ports = Object.fromEntries((container?.ports ?? []).map((p) => [p.name, p.containerPort]));
      expect(ports).toEqual(PORTS);
      expect(Number(config.RAFTMQ_CLIENT_PORT)).toBe(PORTS.client);
      expect(Number(config.RAFTMQ_PEER_PORT)).toBe(PORTS.peer);
      expect(Number(config.RAFTMQ_HTTP_PORT)).toBe(PORTS.http);
      expect(Number(config.RAFTMQ_AMQPS_PORT)).toBe(PORTS.amqps);
    });

    // The ops port stays plain HTTP: a probe cannot present a client certificate or a password.
    it("probes the node's health endpoints on its HTTP port", () => {
      const probes = { startup: container?.startupProbe, liveness: container?.livenessProbe, readiness: container?.readinessProbe };
      for (const [name, probe] of Object.entries(probes)) {
        expect(probe?.httpGet, name).toBeDefined();
        expect(HEALTH_PATHS.has(probe?.httpGet?.path ?? ""), name).toBe(true);
        const port = probe?.httpGet?.port;
        expect(port === "http" || port === PORTS.http, `${name} port ${String(port)}`).toBe(true);
      }
      // Ready means in a cluster with a leader; alive only means the process and storage work.
      expect(probes.readiness?.httpGet?.path).toBe("/readyz");
      expect(probes.liveness?.httpGet?.path).toBe("/healthz");
    });

    it("gives the node its pod name and namespace from the downward API and its options from the ConfigMap", () => {
      const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
      expect(env.POD_NAME).toBe("metadata.name");
      expect(env.POD_NAMESPACE).toBe("metadata.namespace");
      expect(container?.envFrom?.map((e) => e.configMapRef?.name)).toEqual(["raftmq-config"]);
      expect(config.RAFTMQ_DATA_DIR).toBe("/var/lib/raftmq");
      expect(container?.volumeMounts?.find((m) => m.name === "data")?.mountPath).toBe("/var/lib/raftmq");
      // Every RAFTMQ_ variable the node already has must parse as that option would.
      for (const spec of NODE_OPTIONS) {
        const raw = config[`RAFTMQ_${spec.name.toUpperCase().replace(/-/g, "_")}`];
        if (raw !== undefined) expect(() => spec.parse(raw), spec.name).not.toThrow();
      }
    });

    it("sets only RAFTMQ_ variables the node reads, and every pod's environment resolves into a secure config", () => {
      const known = new Set([...NODE_OPTIONS.map((o) => envName(o.name)), ...NOT_OPTIONS]);
      const names = [...Object.keys(config), ...(container?.env ?? []).map((e) => e.name)].filter((n) => n.startsWith("RAFTMQ_"));
      for (const name of names) expect(known.has(name), `${name} is no node option`).toBe(true);
      for (let ordinal = 0; ordinal < (sts.spec?.replicas ?? 0); ordinal++) {
        const launch = podLaunch(objects, "raftmq", ordinal, namespace, externalSecrets);
        for (const [name, value] of Object.entries(launch.env)) expect(value, `${launch.podName} ${name}`).not.toMatch(/\$\(/);
        const node = resolveNodeConfig([], launch.env);
        expect(node.insecure, launch.podName).toBe(false);
        expect(node.bootstrapAdminUser, launch.podName).not.toBe("");
        expect(node.clientCertAuth, launch.podName).toBe("optional");
      }
    });

    it("allows the preStop hand-over and the SIGTERM shutdown to finish inside the grace period", () => {
      expect(container?.lifecycle?.preStop?.exec?.command).toEqual(["node", "/opt/raftmq/prestop-transfer.mjs"]);
      const budgetMs = Number(config.RAFTMQ_PRESTOP_TIMEOUT_MS) + Number(config.RAFTMQ_SHUTDOWN_TIMEOUT_MS);
      expect(budgetMs).toBeGreaterThan(0);
      expect((pod?.terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThanOrEqual(budgetMs + 10_000);
    });

    it("is a parallel StatefulSet with per-pod volumes, spread over hosts and zones, with resources", () => {
      expect(sts.spec?.podManagementPolicy).toBe("Parallel");
      expect(sts.spec?.serviceName).toBe("raftmq-headless");
      expect(sts.spec?.volumeClaimTemplates?.map((v) => v.metadata?.name)).toEqual(["data"]);
      const anti = pod?.affinity?.podAntiAffinity;
      const antiKeys = [
        ...(anti?.requiredDuringSchedulingIgnoredDuringExecution ?? []).map((t) => t.topologyKey),
        ...(anti?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((t) => t.podAffinityTerm.topologyKey),
      ];
      expect(antiKeys).toContain("kubernetes.io/hostname");
      expect(pod?.topologySpreadConstraints?.map((t) => t.topologyKey)).toContain("topology.kubernetes.io/zone");
      for (const key of ["cpu", "memory"]) {
        expect(container?.resources?.requests?.[key], key).toBeDefined();
        expect(container?.resources?.limits?.[key], key).toBeDefined();
      }
      // Pods select by the same labels the Services, PDB and anti-affinity use.
      const labels = sts.spec?.template.metadata?.labels ?? {};
      for (const [k, v] of Object.entries(sts.spec?.selector.matchLabels ?? {})) expect(labels[k]).toBe(v);
    });

    it("has a PDB of one unavailable pod over the StatefulSet's pods", () => {
      const pdb = pick(objects, "PodDisruptionBudget", "raftmq");
      expect(pdb.spec?.maxUnavailable).toBe(1);
      expect(pdb.spec?.selector?.matchLabels).toEqual(sts.spec?.selector.matchLabels);
    });

    it("publishes not-ready pods on the headless Service so peers find each other before a leader exists", () => {
      const headless = pick(objects, "Service", "raftmq-headless");
      expect(headless.spec?.clusterIP).toBe("None");
      expect(headless.spec?.publishNotReadyAddresses).toBe(true);
      expect(headless.spec?.selector).toEqual(sts.spec?.selector.matchLabels);
      expect(headless.spec?.ports?.map((p) => p.port).sort()).toEqual([PORTS.client, PORTS.peer].sort());
      const client = pick(objects, "Service", "raftmq");
      expect(client.spec?.ports?.map((p) => p.port)).toEqual([PORTS.client, PORTS.amqps]);
      expect(client.spec?.publishNotReadyAddresses ?? false).toBe(false);
    });

    it("derives from the pods' env the headless DNS names of the first N ordinals", () => {
      const replicas = sts.spec?.replicas ?? 0;
      const size = Number(config.RAFTMQ_INITIAL_CLUSTER_SIZE);
      expect(size).toBeGreaterThanOrEqual(3);
      expect(size % 2).toBe(1);
      expect(size).toBeLessThanOrEqual(replicas);
      const template = config.RAFTMQ_PEER_HOST_TEMPLATE ?? "";
      for (let ordinal = 0; ordinal < replicas; ordinal++) {
        const id = resolveStatefulSetIdentity({ podName: `${sts.metadata?.name}-${ordinal}`, namespace, initialClusterSize: size, peerHostTemplate: template, peerPort: PORTS.peer, clientPort: PORTS.client });
        expect(id.nodeId).toBe(ordinal + 1);
        expect(id.joinAsLearner).toBe(ordinal >= size);
        expect(id.advertiseHost).toBe(`raftmq-${ordinal}.${sts.spec?.serviceName}.${namespace}.svc.cluster.local`);
        expect(id.initialCluster).toHaveLength(size);
      }
    });
  });
}
