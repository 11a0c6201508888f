// A minority node's data directory is damaged while it is down: on restart it refuses to start
// (exit code 65, one "data-corrupt" line naming the file and the replace command) while the
// other two keep serving; `raftmqctl members replace` brings it back under a new id, it becomes
// a voter, and every confirmed message is consumed exactly once.
import { spawn } from "node:child_process";
import { open as openFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { eventually, publishRange, raftmq, TestClient, TestConsumer, waitForLeader } from "./broker-test-client.ts";
import { DATA_CORRUPT_EXIT_CODE } from "@raftmq/server";
import { useThreeNodeCluster } from "./three-node-cluster.ts";

const RAFTMQCTL = fileURLToPath(new URL("../../packages/cli/bin/raftmqctl.mjs", import.meta.url));
/** Bodies large enough that every node's log spills from LevelDB's memtable into table files. */
const BODY_BYTES = 2048;

const { harness, ids, clients, client } = useThreeNodeCluster("corruption");

function body(seq: number): Uint8Array {
  // The consumer reads the sequence back with Number(), which ignores the padding.
  return new TextEncoder().encode(String(seq).padEnd(BODY_BYTES, " "));
}

function raftmqctl(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [RAFTMQCTL, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((resolve) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    }),
  );
}

async function flipMiddle(path: string): Promise<void> {
  const handle = await openFile(path, "r+");
  try {
    const { size } = await handle.stat();
    const bytes = Buffer.alloc(16);
    await handle.read(bytes, 0, bytes.length, Math.floor(size / 2));
    for (let i = 0; i < bytes.length; i++) bytes[i] = (bytes[i] ?? 0) ^ 0xa5;
    await handle.write(bytes, 0, bytes.length, Math.floor(size / 2));
  } finally {
    await handle.close();
  }
}

async function largestTable(dir: string): Promise<string> {
  const tables = (await readdir(dir)).filter((name) => name.endsWith(".ldb"));
  const sized = await Promise.all(tables.map(async (name) => ({ name, size: (await stat(join(dir, name))).size })));
  sized.sort((a, b) => b.size - a.size);
  const largest = sized[0];
  if (largest === undefined) throw new Error(`no table file in ${dir}: the test must damage a table file`);
  return largest.name;
}

async function publishConfirmed(via: number, from: number, to: number): Promise<number[]> {
  const outcome = await publishRange(client(via), { exchange: "", routingKey: "kept", producerId: "p-corruption", from, to, perRequest: 50, window: 8, body });
  expect(outcome.nacked).toEqual([]);
  return outcome.confirmed;
}

describe("corruption of a minority node", () => {
  it("is refused at startup, the rest keep serving, and replace brings it back as a new voter", async () => {
    const leader = await waitForLeader(ids.map(client));
    const victim = ids.find((id) => id !== leader) as number;
    const healthy = ids.filter((id) => id !== victim);
    const spec = harness.spec(victim);
    await client(leader).call("DeclareQueue", { name: "kept", durable: true });
    const confirmed = await publishConfirmed(leader, 0, 3000);
    expect(confirmed.length).toBe(3000);
    await eventually("the victim has applied everything", async () => {
      const [l, v] = await Promise.all([client(leader).call("Status", {}), client(victim).call("Status", {})]);
      return Number(v.appliedIndex) >= Number(l.commitIndex) ? true : undefined;
    });

    expect((await harness.stop(victim, "SIGTERM")).code).toBe(0);
    const addresses = healthy.map((id) => harness.clientAddress(id)).join(",");
    const replaceArgs = (newId: number) => [
      "--addresses",
      addresses,
      "members",
      "replace",
      String(victim),
      String(newId),
      `127.0.0.1:${spec.peerPort}`,
      harness.clientAddress(victim),
      "--data-dir",
      spec.dataDir,
    ];

    // A healthy directory is never wiped without --force.
    const refused = await raftmqctl(replaceArgs(4));
    expect(refused.code).toBe(1);
    expect(refused.out).toContain("refusing to wipe a healthy node");
    expect((await readdir(spec.dataDir)).some((name) => name.endsWith(".ldb"))).toBe(true);

    const table = await largestTable(spec.dataDir);
    await flipMiddle(join(spec.dataDir, table));

    // Restarted on damaged data, the node must not come up: it exits with its own code and says why.
    const start = await harness.start(victim, { members: ids }).then(
      () => null,
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    expect(start, "the node started and served on corrupt data").not.toBeNull();
    expect(start).toContain(`(code ${DATA_CORRUPT_EXIT_CODE},`);
    const line = (start ?? "").split("\n").find((l) => l.includes('"data-corrupt"'));
    expect(line, "no data-corrupt log line").toBeDefined();
    const report = JSON.parse(line ?? "{}") as { record: string; dataDir: string; command: string; exitCode: number };
    expect(report.record).toBe(`table file ${table}`);
    expect(report.dataDir).toBe(spec.dataDir);
    expect(report.exitCode).toBe(DATA_CORRUPT_EXIT_CODE);
    expect(report.command).toContain(`members replace ${victim} <new-id>`);

    // Two of three keep a quorum: publishes and consumes go on.
    const during = await publishConfirmed(healthy[0] as number, 3000, 3500);
    expect(during.length).toBe(500);
    await client(leader).call("DeclareQueue", { name: "side", durable: true });
    await client(leader).call("Publish", { messages: [{ routingKey: "side", body: new TextEncoder().encode("7") }] });
    const side = new TestConsumer(client(healthy[1] as number), "side", { prefetch: 10, tag: "side" });
    await side.subscribed;
    await eventually("side message consumed", async () => (side.received.length === 1 ? true : undefined));
    side.end();
    await side.ended;

    const replaced = await raftmqctl(replaceArgs(4));
    expect(replaced.code, replaced.out).toBe(0);
    expect(replaced.out).toContain(`step 1/4: ${spec.dataDir} is corrupt`);
    expect(replaced.out).toContain(`step 2/4: removed node ${victim}`);
    expect(replaced.out).toContain("step 3/4: wiped");
    expect(replaced.out).toContain("step 4/4: added node 4 as a learner");

    // Node 4 runs where the victim ran: same ports, the wiped directory.
    const next = await harness.addNodeSpec();
    expect(next.id).toBe(4);
    Object.assign(next, { clientPort: spec.clientPort, peerPort: spec.peerPort, httpPort: spec.httpPort, amqpPort: spec.amqpPort, dataDir: spec.dataDir });
    await harness.start(4, { members: [...healthy, 4], join: true });
    clients.set(4, new TestClient(harness.clientAddress(4)));
    await eventually(
      "node 4 is a voter and the old id is gone",
      async () => {
        const s = await client(leader).call("Status", {}, 2000);
        const voters = s.members.filter((m) => m.role === raftmq.v1.MemberRole.MEMBER_ROLE_VOTER).map((m) => Number(m.id));
        return voters.includes(4) && voters.length === 3 && !s.members.some((m) => Number(m.id) === victim) ? true : undefined;
      },
      30_000,
    );
    await eventually("node 4 caught up", async () => {
      const [l, n] = await Promise.all([client(leader).call("Status", {}), client(4).call("Status", {})]);
      return Number(n.appliedIndex) >= Number(l.commitIndex) ? true : undefined;
    });

    const drain = new TestConsumer(client(4), "kept", { prefetch: 500, tag: "drain" });
    await drain.subscribed;
    const expected = new Set([...confirmed, ...during]);
    await eventually("every confirmed message consumed", async () => (drain.received.length >= expected.size ? true : undefined), 30_000);
    await new Promise((r) => setTimeout(r, 300));
    const seqs = drain.received.map((m) => m.seq);
    expect(seqs.length).toBe(expected.size);
    expect(new Set(seqs)).toEqual(expected);
    drain.end();
    await drain.ended;
  });
});
