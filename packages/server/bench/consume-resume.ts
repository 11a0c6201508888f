// How long a Consume stream held by a follower is without deliveries when the leader dies: a
// 3-node cluster of real node processes with the default timing, a raw stream on a follower
// holding 10 unsettled deliveries, the leader SIGKILLed; the figure is the time from the kill to
// the first delivery of the resumed session (what the dead session held, requeued). The leader
// is restarted between trials. Prints figures only.
//   pnpm bench:resume [trials]
import { publishRange, type raftmq, TestClient, waitForLeader } from "../../../test/integration/broker-test-client.ts";
import { ClusterHarness } from "../../../test/integration/cluster-harness.ts";
import { testAuth } from "../../../test/integration/three-node-cluster.ts";

const TRIALS = Number(process.argv[2] ?? 10);
const ids = [1, 2, 3];
const harness = new ClusterHarness("bench-resume", ["--log-level", "info"]);
await harness.plan(3);
await harness.startAll(3);
const clients = new Map(ids.map((id) => [id, new TestClient(harness.clientAddress(id), testAuth(harness))]));
const at = (id: number) => clients.get(id) as TestClient;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const killToDelivery: number[] = [];
const gaps: number[] = [];
let ended = 0;

for (let t = 0; t < TRIALS; t++) {
  const leader = await waitForLeader(ids.map(at), 60_000);
  const holder = ids.find((id) => id !== leader) as number;
  const queue = `bench-resume-${t}`;
  await at(leader).callRetrying("DeclareQueue", { name: queue, durable: true });
  await publishRange(at(leader), { exchange: "", routingKey: queue, producerId: `bench-${t}`, from: 0, to: 30, perRequest: 10, window: 1 });

  const stream = at(holder).consume();
  let sessions = 0;
  let delivered = 0;
  let resumedAt = 0;
  let done = false;
  stream.on("data", (r: raftmq.v1.ConsumeResponse) => {
    if (r.kind === "session") sessions++;
    if (r.kind !== "delivery" && r.kind !== "deliveries") return;
    delivered++;
    if (sessions >= 2 && resumedAt === 0) resumedAt = performance.now();
  });
  stream.on("error", () => {});
  stream.on("status", () => {
    done = true;
  });
  stream.write({ subscribe: { queue, prefetch: 10, consumerTag: "bench" } });
  while (delivered < 10 && !done) await sleep(5);
  const resumedBefore = harness.eventCount(holder, "consume-stream-resumed");

  const killedAt = performance.now();
  await harness.stop(leader, "SIGKILL");
  const until = Date.now() + 20_000;
  while (resumedAt === 0 && !done && Date.now() < until) await sleep(2);
  if (done || resumedAt === 0) ended++;
  else killToDelivery.push(resumedAt - killedAt);
  // The holder logs the gap between its session going down and the next one announced.
  while (harness.eventCount(holder, "consume-stream-resumed") === resumedBefore && Date.now() < until) await sleep(10);
  const line = harness
    .logs(holder)
    .split("\n")
    .filter((l) => l.includes('"consume-stream-resumed"'))
    .at(-1);
  if (line !== undefined) gaps.push(Number((JSON.parse(line) as { gapMs: number }).gapMs));
  stream.cancel();
  await harness.start(leader, { members: ids });
  console.log(`trial ${t + 1}: kill to delivery ${killToDelivery.at(-1)?.toFixed(0) ?? "-"} ms, node's gap ${gaps.at(-1) ?? "-"} ms`);
}

console.log(
  `${TRIALS} trials: from the leader's SIGKILL to the first delivery on the resumed stream, median ${median(killToDelivery).toFixed(0)} ms ` +
    `(${Math.min(...killToDelivery).toFixed(0)}-${Math.max(...killToDelivery).toFixed(0)}); the holding node's gap, median ${median(gaps)} ms; streams that ended instead: ${ended}`,
);
for (const c of clients.values()) c.close();
await harness.cleanup();
