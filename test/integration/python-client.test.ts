// A non-TypeScript client: Python with Debian's python3-grpcio and python3-grpc-tools generates
// stubs from proto/ at test time, then publishes and consumes through a follower; and publishes
// through a leader kill and a frozen leader following only docs/client-guide.md, exactly once.
import { testAuth } from "./three-node-cluster.ts";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, sleep, TestClient, TestConsumer, waitForLeader, waitForNewLeader } from "./broker-test-client.ts";
import { ClusterHarness } from "./cluster-harness.ts";

// Debian's Python modules belong to /usr/bin/python3, not to whatever python3 is first on PATH.
const PYTHON = "/usr/bin/python3";
const hasGrpc = spawnSync(PYTHON, ["-c", "import grpc, grpc_tools"]).status === 0;
// A developer machine without the packages skips this file; CI installs them, so there a
// missing package is a failure, not a silent skip.
const runHere = hasGrpc || process.env.CI === "true";
const PROTO_ROOT = fileURLToPath(new URL("../../proto", import.meta.url));
const SCRIPT = fileURLToPath(new URL("./python/publish_consume.py", import.meta.url));
const EXACTLY_ONCE = fileURLToPath(new URL("./python/publish_exactly_once.py", import.meta.url));
// google/rpc/status.proto and error_details.proto, for the error details.
const GOOGLE_PROTO_ROOT = fileURLToPath(new URL("../../packages/proto/node_modules/google-proto-files", import.meta.url));

const harness = new ClusterHarness("python");
const clients: TestClient[] = [];
let follower = 0;

beforeAll(async () => {
  if (!runHere) return;
  if (!hasGrpc) throw new Error(`${PYTHON} cannot import grpc and grpc_tools: apt-get install -y python3-grpcio python3-grpc-tools`);
  await harness.plan(3);
  await harness.startAll(3);
  for (const s of harness.specs) clients.push(new TestClient(harness.clientAddress(s.id), testAuth(harness)));
  const leader = await waitForLeader(clients);
  follower = harness.specs.find((s) => s.id !== leader)?.id ?? 0;
});

afterAll(async () => {
  for (const c of clients) c.close();
  await harness.cleanup();
});

describe.skipIf(!runHere)("a Python client (needs apt-get install python3-grpcio python3-grpc-tools)", () => {
  it("publishes and consumes through a follower with stubs generated from proto/", () => {
    const out = spawnSync(PYTHON, [SCRIPT, PROTO_ROOT, harness.clientAddress(follower), "from-python", "200"], { encoding: "utf8", timeout: 60_000 });
    expect(out.stderr).toBe("");
    expect(out.status).toBe(0);
    const result = JSON.parse(out.stdout.trim()) as { confirmed: number; received: number[]; session: string; not_found: string };
    expect(result.confirmed).toBe(200);
    expect(result.received).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(result.session).not.toBe("");
    expect(result.not_found).toBe("NOT_FOUND");
  });

  it("publishes exactly once through a leader kill and a frozen leader, following only the client guide", async () => {
    const total = 2000;
    /** How far the publisher was when each fault struck. */
    const struckAt: number[] = [];
    const child = spawn(PYTHON, [EXACTLY_ONCE, PROTO_ROOT, GOOGLE_PROTO_ROOT, harness.specs.map((s) => harness.clientAddress(s.id)).join(","), "py-exactly-once", String(total), "py-producer"]);
    let stdout = "";
    let stderr = "";
    let progress = 0;
    const faults: Promise<void>[] = [];
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      for (const m of d.toString().matchAll(/progress (\d+)/g)) progress = Math.max(progress, Number(m[1]));
      if (progress >= 300 && faults.length === 0) {
        // The leader dies: what it applied but did not answer is resent, marked retry.
        faults.push(
          (async () => {
            const leader = await waitForLeader(clients);
            struckAt.push(progress);
            await harness.stop(leader, "SIGKILL");
            await harness.start(leader, { members: harness.specs.map((x) => x.id) });
          })(),
        );
      }
      if (progress >= 700 && faults.length === 1) {
        // The leader freezes, as a partition cuts it off: the others elect, then it comes back.
        faults.push(
          (async () => {
            await faults[0];
            const leader = await waitForLeader(clients);
            const pid = harness.processes.get(leader)?.child.pid;
            if (pid === undefined) throw new Error(`no process for node ${leader}`);
            struckAt.push(progress);
            process.kill(pid, "SIGSTOP");
            try {
              await waitForNewLeader(clients.filter((_, i) => harness.specs[i]?.id !== leader), leader);
              await sleep(500);
            } finally {
              process.kill(pid, "SIGCONT");
            }
          })(),
        );
      }
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    await Promise.all(faults);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    // Both faults struck while the publisher was still at work.
    expect(struckAt.length).toBe(2);
    expect(struckAt.every((p) => p < total)).toBe(true);
    const result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as { confirmed: number[]; unknown: number[]; duplicates: number; retries: number; outcomes: Record<string, number> };
    console.log(`python exactly-once: faults at ${struckAt.join(" and ")}; ${result.confirmed.length} confirmed, ${result.unknown.length} unknown, ${result.duplicates} duplicates, ${result.retries} resent as retries, outcomes ${JSON.stringify(result.outcomes)}`);
    expect(result.confirmed.length + result.unknown.length).toBe(total);

    const leader = await waitForLeader(clients);
    const consumer = new TestConsumer(clients[harness.specs.findIndex((s) => s.id === leader)] as TestClient, "py-exactly-once", { prefetch: 500 });
    await eventually("the queue drained", async () => {
      const q = (await clients[0]?.call("QueueInfo", { name: "py-exactly-once" }))?.queue;
      return Number(q?.messagesReady) === 0 && Number(q?.messagesUnacked) === 0 && consumer.received.length >= result.confirmed.length ? true : undefined;
    });
    consumer.end();
    const counts = new Map<number, number>();
    for (const m of consumer.received) if (!m.redelivered) counts.set(m.seq, (counts.get(m.seq) ?? 0) + 1);
    // Every confirmed message once, each of unknown outcome at most once, nothing else.
    for (const i of result.confirmed) expect([i, counts.get(i)]).toEqual([i, 1]);
    for (const i of result.unknown) expect(counts.get(i) ?? 0).toBeLessThanOrEqual(1);
    const known = new Set([...result.confirmed, ...result.unknown]);
    expect([...counts.keys()].filter((i) => !known.has(i))).toEqual([]);
  }, 180_000);
});
