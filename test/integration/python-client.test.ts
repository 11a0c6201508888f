// A non-TypeScript client: Python with Debian's python3-grpcio and python3-grpc-tools generates
// stubs from proto/ at test time, then publishes and consumes through a follower.
import { testAuth } from "./three-node-cluster.ts";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestClient, waitForLeader } from "./broker-test-client.ts";
import { ClusterHarness } from "./cluster-harness.ts";

// Debian's Python modules belong to /usr/bin/python3, not to whatever python3 is first on PATH.
const PYTHON = "/usr/bin/python3";
const hasGrpc = spawnSync(PYTHON, ["-c", "import grpc, grpc_tools"]).status === 0;
// A developer machine without the packages skips this file; CI installs them, so there a
// missing package is a failure, not a silent skip.
const runHere = hasGrpc || process.env.CI === "true";
const PROTO_ROOT = fileURLToPath(new URL("../../proto", import.meta.url));
const SCRIPT = fileURLToPath(new URL("./python/publish_consume.py", import.meta.url));

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
});
