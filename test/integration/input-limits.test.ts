// No request hurts the cluster: 1 MiB of metadata answers RESOURCE_EXHAUSTED on a client port and
// on a peer port, metadata just under --max-metadata-bytes is served (forwarded to the leader
// too), the nodes serve on; and a request limit changed with raftmqctl is in force on every node.
import { MACHINE_VERSION } from "@raftmq/broker";
import { brokerServiceDefinition, type Client, clusterServiceDefinition, connectClient, GrpcStatus, Metadata, type MethodDefinition } from "@raftmq/server";
import { afterAll, describe, expect, it } from "vitest";
import { killAll, run } from "../../packages/cli/test/cli-process.ts";
import { eventually, isServiceError, type raftmq, waitForLeader } from "./broker-test-client.ts";
import { testAuth, useThreeNodeCluster } from "./three-node-cluster.ts";

const KiB = 1024;
/** The node's default --max-metadata-bytes. */
const LIMIT = 16 * KiB;

const cluster = useThreeNodeCluster("input-limits");

afterAll(async () => {
  await killAll();
});

type Method = MethodDefinition<unknown, unknown>;
const status = clusterServiceDefinition.Status as unknown as Method;
const declareQueue = brokerServiceDefinition.DeclareQueue as unknown as Method;
const publish = brokerServiceDefinition.Publish as unknown as Method;

/** A channel to `address` as the harness's clients make them: TLS with the run's CA, or plaintext. */
function channel(address: string): Client {
  const auth = testAuth(cluster.harness);
  return connectClient(address, {}, auth.channel);
}

/**
 * Calls `method` with the harness's credentials and `entries` padding values of `size` bytes;
 * resolves to "OK" or the status name and details.
 */
function call(client: Client, method: Method, request: unknown, pad: { size: number; entries?: number } = { size: 0 }): Promise<string> {
  const metadata = new Metadata();
  for (const [k, v] of Object.entries(testAuth(cluster.harness).metadata ?? {})) metadata.set(k, v);
  for (let i = 0; i < (pad.entries ?? 1) && pad.size > 0; i++) metadata.set(`x-pad-${i}`, "v".repeat(pad.size));
  return new Promise((resolve) =>
    client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, metadata, { deadline: Date.now() + 15_000 }, (err) =>
      resolve(err === null ? "OK" : `${GrpcStatus[err.code]}: ${err.details}`),
    ),
  );
}

/** 1 MiB of metadata in 128 values of 8 KiB (a single value over 64 KiB is HPACK's to refuse). */
const oneMiB = { size: 8 * KiB, entries: 128 };

/** Retries `attempt` while it fails with the connection that the 1 MiB block made Node close. */
async function servedAgain(attempt: () => Promise<string>): Promise<string> {
  return eventually("the node to serve again", async () => {
    const answer = await attempt();
    return answer === "OK" ? answer : undefined;
  }, 10_000);
}

async function leaderAndFollower(): Promise<{ leader: number; follower: number }> {
  const leader = await waitForLeader([...cluster.clients.values()]);
  const follower = cluster.ids.find((id) => id !== leader);
  if (follower === undefined) throw new Error("no follower");
  return { leader, follower };
}

describe("request metadata", () => {
  it("1 MiB of it answers RESOURCE_EXHAUSTED on a client port, and the node serves on", async () => {
    const c = channel(cluster.harness.clientAddress(1));
    try {
      expect(await call(c, status, {}, oneMiB)).toBe("RESOURCE_EXHAUSTED: Bandwidth exhausted or memory limit exceeded");
      // Node also closes the connection that sent so long a header block (more CONTINUATION
      // frames than it allows); the client's next connection is served.
      expect(await servedAgain(() => call(c, status, {}))).toBe("OK");
      expect(await call(c, declareQueue, { name: "after-metadata" }, oneMiB)).toBe("RESOURCE_EXHAUSTED: Bandwidth exhausted or memory limit exceeded");
    } finally {
      c.close();
    }
    const fresh = channel(cluster.harness.clientAddress(1));
    try {
      expect(await call(fresh, declareQueue, { name: "after-metadata" })).toBe("OK");
      expect(await call(fresh, status, {})).toBe("OK");
    } finally {
      fresh.close();
    }
  });

  it("1 MiB of it answers RESOURCE_EXHAUSTED on a peer port too, before any check of who calls", async () => {
    const { leader } = await leaderAndFollower();
    const c = channel(cluster.harness.peerAddress(leader));
    try {
      expect(await call(c, status, {}, oneMiB)).toBe("RESOURCE_EXHAUSTED: Bandwidth exhausted or memory limit exceeded");
    } finally {
      c.close();
    }
    // The cluster still commits through that leader.
    const after = channel(cluster.harness.clientAddress(leader));
    try {
      expect(await call(after, declareQueue, { name: "after-peer-metadata" })).toBe("OK");
    } finally {
      after.close();
    }
  });

  it("just under the limit is served on the leader, and on a follower that forwards it to the leader's peer port", async () => {
    const { leader, follower } = await leaderAndFollower();
    const onLeader = channel(cluster.harness.clientAddress(leader));
    const onFollower = channel(cluster.harness.clientAddress(follower));
    try {
      // The largest padding the leader's client port serves: the limit less the call's own headers.
      let lo = 0;
      let hi = LIMIT;
      while (lo + 1 < hi) {
        const mid = (lo + hi) >> 1;
        if ((await call(onLeader, declareQueue, { name: "near-limit" }, { size: mid })) === "OK") lo = mid;
        else hi = mid;
      }
      expect(lo).toBeGreaterThan(LIMIT - 6 * KiB);
      expect(lo).toBeLessThan(LIMIT);
      expect(await call(onLeader, declareQueue, { name: "near-limit" }, { size: lo + 64 })).toBe("RESOURCE_EXHAUSTED: Bandwidth exhausted or memory limit exceeded");
      // Within 16 bytes of the limit on the follower's client port: the copy it forwards carries
      // raftmq-forwarded (and the user's name) on top, which the peer port's headroom lets through.
      expect(await call(onFollower, declareQueue, { name: "near-limit" }, { size: lo - 16 })).toBe("OK");
      expect(await call(onFollower, publish, { messages: [{ routingKey: "near-limit", body: Buffer.from("m") }] }, { size: lo - 16 })).toBe("OK");
    } finally {
      onLeader.close();
      onFollower.close();
    }
  });
});

describe("a request limit changed with raftmqctl", () => {
  async function ctlRun(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const h = cluster.harness;
    const env: Record<string, string> = { RAFTMQ_ADDRESSES: cluster.ids.map((id) => h.clientAddress(id)).join(",") };
    if (h.security === "tls") {
      const o = h.clientOptions();
      const certs = await h.certificatesFor(cluster.ids);
      Object.assign(env, { RAFTMQ_USERNAME: o.credentials?.username ?? "", RAFTMQ_PASSWORD: o.credentials?.password ?? "", RAFTMQ_TLS_CA_FILE: certs.ca.certPath });
    }
    return run("raftmqctl", args, { env });
  }

  async function ctl(args: string[]): Promise<string> {
    const r = await ctlRun(args);
    if (r.code !== 0) throw new Error(`raftmqctl ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  /** What each node answers to a publish whose message_id has `bytes` bytes. */
  async function answers(bytes: number): Promise<string[]> {
    return Promise.all(
      cluster.ids.map(async (id) => {
        try {
          await cluster.client(id).call("Publish", { messages: [{ routingKey: "limits-q", properties: { messageId: "m".repeat(bytes) } }] });
          return "OK";
        } catch (err) {
          return isServiceError(err) ? `${GrpcStatus[err.code]}: ${err.details}` : String(err);
        }
      }),
    );
  }

  /** maxPropertyStringBytes as each node has applied it. */
  async function applied(): Promise<number[]> {
    const statuses = await Promise.all(cluster.ids.map((id) => cluster.client(id).call("Status", {})));
    return statuses.map((s: raftmq.v1.StatusResponse) => s.settings?.maxPropertyStringBytes ?? 0);
  }

  it("takes effect on every node, lowered and raised, and shows in `raftmqctl settings`", async () => {
    await cluster.client(1).callRetrying("DeclareQueue", { name: "limits-q" });
    expect(await answers(300)).toEqual(Array(3).fill("INVALID_ARGUMENT: properties.message_id is 300 UTF-8 bytes; the limit is 255 (maxPropertyStringBytes)"));
    expect(await answers(200)).toEqual(["OK", "OK", "OK"]);

    expect(await ctl(["settings", "set", "maxPropertyStringBytes=100"])).toContain("maxPropertyStringBytes = 100");
    await eventually("every node to apply maxPropertyStringBytes=100", async () => ((await applied()).every((v) => v === 100) ? true : undefined));
    expect(await answers(200)).toEqual(Array(3).fill("INVALID_ARGUMENT: properties.message_id is 200 UTF-8 bytes; the limit is 100 (maxPropertyStringBytes)"));

    expect(await ctl(["settings", "set", "maxPropertyStringBytes=1000"])).toContain("maxPropertyStringBytes = 1000");
    await eventually("every node to apply maxPropertyStringBytes=1000", async () => ((await applied()).every((v) => v === 1000) ? true : undefined));
    expect(await answers(300)).toEqual(["OK", "OK", "OK"]);

    const shown = JSON.parse(await ctl(["settings", "--json"])) as { machineVersion: number; settings: Record<string, number> };
    expect(shown).toMatchObject({ machineVersion: MACHINE_VERSION, settings: { maxPropertyStringBytes: 1000, maxDeaths: 64, maxMessageBytes: 16 * 1024 * 1024 } });
    expect(await ctl(["settings"])).toMatch(/│ maxPropertyStringBytes\s+│ 1000\s+│/);
  });

  it("refuses a value out of range, naming the range, and changes nothing", async () => {
    const r = await ctlRun(["settings", "set", "maxPropertyStringBytes=0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cluster setting maxPropertyStringBytes must be an integer in [1, 65536], got 0");
    expect(await applied()).toEqual([1000, 1000, 1000]);
  });
});
