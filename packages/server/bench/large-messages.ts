// Large messages against a local 3-node cluster (real processes on 127.0.0.1, --insecure): the
// longest event-loop stall of each node while one producer publishes bodies of --bytes one at a
// time (nodejs_eventloop_lag_max_seconds, read before and after), the confirm latency, and
// whether leadership changed. Prints figures; asserts nothing.
import { parseArgs } from "node:util";
import { connect } from "@raftmq/client";
import { ClusterHarness } from "../../../test/integration/cluster-harness.ts";
import { percentile } from "./percentile.ts";

const USAGE = `usage: node --import tsx packages/server/bench/large-messages.ts [--bytes N] [--messages N]
  --bytes N      body size (16777216, the default maxMessageBytes)
  --messages N   messages published, one at a time (20)`;

const { values } = parseArgs({ options: { bytes: { type: "string" }, messages: { type: "string" }, help: { type: "boolean" } } });
if (values.help === true) {
  console.log(USAGE);
  process.exit(0);
}
const bytes = Number(values.bytes ?? 16 * 1024 * 1024);
const messages = Number(values.messages ?? 20);
if (!(Number.isSafeInteger(bytes) && bytes > 0 && Number.isSafeInteger(messages) && messages > 0)) {
  console.error(USAGE);
  process.exit(2);
}

const harness = new ClusterHarness("large-messages", ["--log-level", "info"], undefined, "insecure");
const ids = [1, 2, 3];

async function metric(id: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${harness.spec(id).httpPort}/metrics`)).text();
  const match = text.match(new RegExp(`^${name} ([0-9.e+-]+)$`, "m"));
  return match === null ? Number.NaN : Number(match[1]);
}

try {
  await harness.plan(3);
  await harness.startAll(3);
  const client = await connect(ids.map((id) => harness.clientAddress(id)));
  await client.declareQueue("large", { durable: true });
  const leaderOf = async (): Promise<{ leader: number; term: number }> => {
    const status = await client.status();
    return { leader: Number(status.leaderId), term: Number(status.term) };
  };
  const before = await leaderOf();
  // Reading the gauge resets it: what follows covers the publishes only.
  for (const id of ids) await metric(id, "nodejs_eventloop_lag_max_seconds");
  const body = Buffer.alloc(bytes, 7);
  const latencies: number[] = [];
  for (let i = 0; i < messages; i++) {
    const started = performance.now();
    await client.publish("", "large", body);
    latencies.push(performance.now() - started);
  }
  const stalls = await Promise.all(ids.map((id) => metric(id, "nodejs_eventloop_lag_max_seconds")));
  const after = await leaderOf();
  console.log(`${messages} publishes of ${bytes} bytes, one at a time, 3 nodes`);
  for (const [i, id] of ids.entries()) {
    console.log(`  node ${id}${id === before.leader ? " (leader)" : ""}: longest event-loop stall ${Math.round((stalls[i] ?? Number.NaN) * 1000)} ms`);
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  console.log(`  confirm latency p50 ${Math.round(percentile(sorted, 50))} ms, max ${Math.round(sorted[sorted.length - 1] ?? 0)} ms`);
  console.log(`  leader ${before.leader} in term ${before.term} before, ${after.leader} in term ${after.term} after`);
  client.close();
} finally {
  await harness.cleanup();
}
