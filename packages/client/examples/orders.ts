// Declares an exchange and a queue, publishes ten orders with confirms, and consumes them with acks.
// Run against `pnpm start`:  pnpm exec tsx packages/client/examples/orders.ts
// Another cluster:           RAFTMQ_ADDRESSES=host1:7600,host2:7600 pnpm exec tsx packages/client/examples/orders.ts
// As another user, over TLS:  RAFTMQ_USERNAME, RAFTMQ_PASSWORD, RAFTMQ_VHOST, RAFTMQ_TLS_CA_FILE (as raftmqctl reads them)
import { readFileSync } from "node:fs";
import { connect } from "@raftmq/client";

const env = process.env;
const addresses = (env.RAFTMQ_ADDRESSES ?? "127.0.0.1:7601,127.0.0.1:7602,127.0.0.1:7603").split(",");
const client = await connect(addresses, {
  credentials: { username: env.RAFTMQ_USERNAME ?? "guest", password: env.RAFTMQ_PASSWORD ?? "guest" },
  vhost: env.RAFTMQ_VHOST ?? "/",
  tls: env.RAFTMQ_TLS_CA_FILE === undefined ? undefined : { ca: readFileSync(env.RAFTMQ_TLS_CA_FILE) },
});

await client.declareExchange("shop", "direct");
await client.declareQueue("orders");
await client.bind("shop", "orders", "order.created");

// Each publish resolves once the message is on a majority of the cluster's disks.
const publisher = client.createPublisher({ window: 64 });
await Promise.all(
  Array.from({ length: 10 }, (_, i) =>
    publisher.publish("shop", "order.created", JSON.stringify({ order: i + 1, item: "book" }), { properties: { contentType: "application/json" } }),
  ),
);
console.log("published 10 orders");

const consumer = await client.consume("orders", { prefetch: 5 });
let received = 0;
for await (const delivery of consumer) {
  const order = JSON.parse(delivery.text()) as { order: number; item: string };
  console.log(`order ${order.order}: ${order.item}${delivery.redelivered ? " (redelivered)" : ""}`);
  delivery.ack();
  if (++received === 10) break; // leaving the loop cancels the subscription
}
client.close();
