// A StatefulSet run locally: real node processes started with the environment and arguments the
// rendered StatefulSet gives its pods, the headless Service's names mapped to 127.0.0.10.. through
// --host-alias. Covers first start, scale up, a stopped pod, a restarted pod, a lost volume, and a
// lost volume found while the whole set restarts. The nodes run with --insecure: this rehearses
// identity and membership; statefulset-tls-rehearsal.test.ts rehearses the same pods with TLS.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeIdOf, ordinalOfNodeId } from "@raftmq/server";
import { eventually, raftmq, TestClient, waitForLeader } from "../integration/broker-test-client.ts";
import { K8S_BASE, REPO_ROOT } from "./src/deploy-paths.ts";
import { DEPLOYMENTS } from "./src/deployments.ts";
import { renderKustomization } from "./src/kustomize-render.ts";
import { podLaunch } from "./src/statefulset-pod.ts";

const NAMESPACE = "raftmq";
const SET = "raftmq";
const PODS = 4;
const CLI = join(REPO_ROOT, "packages/cli/bin/raftmq.mjs");
const ip = (ordinal: number) => `127.0.0.${10 + ordinal}`;
const hostName = (ordinal: number) => `${SET}-${ordinal}.${SET}-headless.${NAMESPACE}.svc.cluster.local`;

const objects = renderKustomization(K8S_BASE);
const secrets = DEPLOYMENTS.find((d) => d.dir === K8S_BASE)?.externalSecrets ?? {};
const TLS_FILES = ["RAFTMQ_TLS_CA_FILE", "RAFTMQ_TLS_CERT_FILE", "RAFTMQ_TLS_KEY_FILE"];
const root = mkdtempSync(join(tmpdir(), "raftmq-statefulset-"));
const running = new Map<number, { child: ChildProcess; lines: string[]; exit: Promise<number | null> }>();
const output = new Map<number, string[]>();

function dataDir(ordinal: number): string {
  return join(root, `data-${SET}-${ordinal}`);
}

/** Starts the pod's container as the StatefulSet would, on its own loopback address. */
function startPod(ordinal: number): void {
  if (running.has(ordinal)) throw new Error(`pod ${ordinal} runs already`);
  const launch = podLaunch(objects, SET, ordinal, NAMESPACE, secrets);
  const aliases = Array.from({ length: PODS }, (_, n) => `${hostName(n)}=${ip(n)}`).join(",");
  // Only what a cluster provides differently: where the volume is, which interface, no DNS; and
  // no certificates (the test client speaks plaintext), so --insecure instead.
  const env: Record<string, string> = { ...launch.env, RAFTMQ_DATA_DIR: dataDir(ordinal), RAFTMQ_HOST: ip(ordinal), RAFTMQ_HOST_ALIAS: aliases, PATH: process.env.PATH ?? "" };
  // Run without TLS: no certificates, and no AMQPS port, which needs them.
  for (const name of [...TLS_FILES, "RAFTMQ_AMQPS_PORT"]) delete env[name];
  env.RAFTMQ_INSECURE = "true";
  const child = spawn(process.execPath, [CLI, "node", ...launch.args], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  const lines = output.get(ordinal) ?? [];
  output.set(ordinal, lines);
  const onData = (chunk: Buffer) => {
    lines.push(...chunk.toString("utf8").split("\n").filter((l) => l !== ""));
    if (lines.length > 2000) lines.splice(0, lines.length - 2000);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  running.set(ordinal, { child, lines, exit });
  void exit.then(() => running.delete(ordinal));
}

async function stopPod(ordinal: number): Promise<number | null> {
  const pod = running.get(ordinal);
  if (pod === undefined) throw new Error(`pod ${ordinal} is not running`);
  pod.child.kill("SIGTERM");
  return pod.exit;
}

function logged(ordinal: number, event: string): Record<string, unknown>[] {
  return (output.get(ordinal) ?? []).flatMap((line) => {
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      return parsed.event === event ? [parsed] : [];
    } catch {
      return [];
    }
  });
}

/** The id each ordinal runs as, learned from its own Status. */
const idOf = new Map<number, number>();
async function learnId(ordinal: number): Promise<number> {
  const id = Number((await client(ordinal).call("Status", {}, 2000)).nodeId);
  idOf.set(ordinal, id);
  return id;
}

const clients = new Map<number, TestClient>();
function client(ordinal: number): TestClient {
  let c = clients.get(ordinal);
  if (c === undefined) {
    c = new TestClient(`${ip(ordinal)}:7600`);
    clients.set(ordinal, c);
  }
  return c;
}

async function members(ordinal: number): Promise<raftmq.v1.Member.$Properties[]> {
  return (await client(ordinal).call("Status", {}, 2000)).members;
}

async function roundTrip(via: number, body: number): Promise<void> {
  await client(via).callRetrying("DeclareQueue", { name: "rehearsal", durable: true });
  const res = await client(via).callRetrying("Publish", { messages: [{ exchange: "", routingKey: "rehearsal", body: new Uint8Array([body]) }] });
  expect(res.confirms[0]?.status).toBe(raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK);
  const got = await client(via).callRetrying("Get", { queue: "rehearsal" });
  expect(Array.from(got.delivery?.body ?? [])).toEqual([body]);
}

describe("StatefulSet rehearsal", () => {
  beforeAll(() => {
    // The launch must come from the manifests: the pod name from the downward API, the rest from the ConfigMap.
    const launch = podLaunch(objects, SET, 0, NAMESPACE, secrets);
    expect(launch.env.POD_NAME).toBe("raftmq-0");
    // What the rehearsal takes away is really there: the pods run on TLS.
    for (const name of TLS_FILES) expect(launch.env[name], name).toMatch(/^\/etc\/raftmq\/tls\/raftmq-0\//);
    expect(launch.env.RAFTMQ_INSECURE).toBeUndefined();
    expect(launch.env.RAFTMQ_PEER_HOST_TEMPLATE).toContain("{ordinal}");
  });

  afterAll(async () => {
    for (const c of clients.values()) c.close();
    const left = [...running.values()];
    for (const pod of left) pod.child.kill("SIGKILL");
    await Promise.all(left.map((p) => p.exit));
    rmSync(root, { recursive: true, force: true });
  });

  function dump(): string {
    return [...output.entries()].map(([n, lines]) => `--- ${SET}-${n}\n${lines.slice(-40).join("\n")}`).join("\n");
  }

  it("founders start in parallel from an empty volume and form a cluster", async () => {
    for (let n = 0; n < 3; n++) startPod(n);
    try {
      await waitForLeader([0, 1, 2].map(client), 40_000);
    } catch (err) {
      throw new Error(`${String(err)}\n${dump()}`);
    }
    // A founder that starts after the other two already elected a leader cannot tell that from a
    // lost volume, so it takes a new id rather than vote as one that may have voted before.
    for (let n = 0; n < 3; n++) {
      const id = await learnId(n);
      const decision = logged(n, "statefulset-startup")[0]?.decision;
      if (id === n + 1) expect(decision).toEqual({ kind: "bootstrap", nodeId: n + 1 });
      else expect(decision).toEqual({ kind: "replace", removeIds: [n + 1], nodeId: nodeIdOf(n, 1) });
    }
    const voters = async () => (await members(0)).filter((m) => m.role === raftmq.v1.MemberRole.MEMBER_ROLE_VOTER).map((m) => Number(m.id));
    const founders = [0, 1, 2].map((n) => idOf.get(n) ?? 0).sort((a, b) => a - b);
    await eventually("the founders as the voters", async () => ((await voters()).join() === founders.join() ? true : undefined), 20_000);
    await roundTrip(0, 1);
  });

  it("ordinal 3 joins as a learner through AddMember and is promoted to voter", async () => {
    startPod(3);
    const voter = await eventually(
      "node 4 as a voter",
      async () => (await members(0)).find((m) => Number(m.id) === 4 && m.role === raftmq.v1.MemberRole.MEMBER_ROLE_VOTER),
      30_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${dump()}`);
    });
    expect(voter.peerAddress).toBe(`${ip(3)}:7700`);
    expect(logged(3, "statefulset-startup")[0]?.decision).toEqual({ kind: "join", nodeId: 4 });
    // AddMember adds learners only: the voter above went through that step.
    expect(logged(3, "add-member").length).toBeGreaterThan(0);
    // The join loop sees itself listed on its next round and records that it joined.
    await eventually("pod 3 to record that it joined", async () => (logged(3, "joined").length === 1 ? true : undefined), 10_000);
  });

  it("a stopped pod leaves the rest serving, and restarted with its volume it rejoins as itself", async () => {
    expect(await stopPod(1)).toBe(0);
    await roundTrip(2, 2);
    startPod(1);
    await waitForLeader([0, 1, 2, 3].map(client), 30_000);
    expect(Number((await client(1).call("Status", {})).nodeId)).toBe(idOf.get(1));
    expect(logged(1, "statefulset-startup").at(-1)?.decision).toEqual({ kind: "restart" });
    await roundTrip(1, 3);
  });

  it("a founder whose volume was lost rejoins under a new id, never voting as its old one", async () => {
    expect(await stopPod(2)).toBe(0);
    rmSync(dataDir(2), { recursive: true, force: true });
    startPod(2);
    const oldId = idOf.get(2) ?? 0;
    const newId = nodeIdOf(2, ordinalOfNodeId(oldId).generation + 1);
    const ids = await eventually(
      "the lost incarnation replaced by a new voter",
      async () => {
        const m = await members(0);
        const replaced = !m.some((x) => Number(x.id) === oldId) && m.some((x) => Number(x.id) === newId && x.role === raftmq.v1.MemberRole.MEMBER_ROLE_VOTER);
        return replaced ? m.map((x) => Number(x.id)) : undefined;
      },
      30_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${dump()}`);
    });
    expect(ids).toEqual([idOf.get(0), idOf.get(1), 4, newId].sort((a = 0, b = 0) => a - b));
    expect(logged(2, "statefulset-startup").at(-1)?.decision).toEqual({ kind: "replace", removeIds: [oldId], nodeId: newId });
    expect(Number((await client(2).call("Status", {})).nodeId)).toBe(newId);
    await roundTrip(2, 4);
  });

  it("the whole set restarts with one founder's volume lost and that pod first: it waits, then joins under a new id", async () => {
    await client(1).callRetrying("DeclareQueue", { name: "kept-across-restart", durable: true });
    const sent = await client(1).callRetrying("Publish", { messages: [{ exchange: "", routingKey: "kept-across-restart", body: new Uint8Array([42]) }] });
    expect(sent.confirms[0]?.status).toBe(raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK);
    const oldId = idOf.get(0) ?? 0;
    for (const ordinal of [...running.keys()]) await stopPod(ordinal);
    rmSync(dataDir(0), { recursive: true, force: true });

    // Alone, with nobody answering, the pod must not bootstrap a cluster of its own.
    const decisionsBefore = logged(0, "statefulset-startup").length;
    startPod(0);
    await new Promise((r) => setTimeout(r, 3000));
    expect(logged(0, "statefulset-startup").slice(decisionsBefore)).toEqual([]);
    expect(Number((await client(0).call("Status", {}, 2000)).nodeId)).toBe(0);

    for (const ordinal of [1, 2, 3]) startPod(ordinal);
    const newId = nodeIdOf(0, ordinalOfNodeId(oldId).generation + 1);
    await eventually(
      "ordinal 0 back under a new id, as a voter",
      async () => {
        const m = await members(1);
        return !m.some((x) => Number(x.id) === oldId) && m.some((x) => Number(x.id) === newId && x.role === raftmq.v1.MemberRole.MEMBER_ROLE_VOTER) ? true : undefined;
      },
      60_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${dump()}`);
    });
    expect(logged(0, "statefulset-startup").at(-1)?.decision).toEqual({ kind: "replace", removeIds: [oldId], nodeId: newId });
    const got = await client(0)
      .callRetrying("Get", { queue: "kept-across-restart" })
      .catch(async (err: unknown) => {
        const states = await Promise.all([0, 1, 2, 3].map((o) => client(o).call("Status", {}, 2000).then((st) => `${o}: id ${st.nodeId} leader ${st.leaderId} term ${st.term} commit ${st.commitIndex} applied ${st.appliedIndex} last ${st.lastIndex} members ${st.members.map((m) => `${m.id}@${m.peerAddress}`).join(" ")}`, (e: unknown) => `${o}: ${String(e)}`)));
        throw new Error(`${String(err)}\n${states.join("\n")}\n${dump()}`);
      });
    expect(Array.from(got.delivery?.body ?? [])).toEqual([42]);
  });
});
