// Declares an exchange and a queue, publishes ten orders with confirms, and consumes them with acks.
// Run against `pnpm start`:  pnpm exec tsx packages/client/examples/orders.ts
// Another cluster:           RAFTMQ_ADDRESSES=host1:7600,host2:7600 pnpm exec tsx packages/client/examples/orders.ts
import { connect } from "@raftmq/client";

const addresses = (process.env.RAFTMQ_ADDRESSES ?? "127.0.0.1:7601,127.0.0.1:7602,127.0.0.1:7603").split(",");
const client = await connect(addresses);

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
