// A consumer process for the liveness tests: subscribes to a queue at one node with a prefetch,
// takes deliveries without acknowledging them, prints "held N" once it holds the prefetch, and
// then waits. The test freezes it (SIGSTOP): the node sees only a connection that stopped
// answering, as after a cut network or a hung client.
//   node --import tsx test/integration/frozen-consumer.ts <address> <queue> <prefetch>
import { TestClient } from "./broker-test-client.ts";

const [address, queue, prefetchText] = process.argv.slice(2);
const prefetch = Number(prefetchText);
if (address === undefined || queue === undefined || !(prefetch > 0)) {
  process.stderr.write("usage: frozen-consumer.ts <address> <queue> <prefetch>\n");
  process.exit(2);
}
const client = new TestClient(address);
const stream = client.consume();
let held = 0;
stream.on("data", (r) => {
  if (r.kind === "delivery" && ++held === prefetch) process.stdout.write(`held ${held}\n`);
});
stream.on("error", (err) => {
  process.stdout.write(`ended ${err.message}\n`);
  process.exit(1);
});
stream.write({ subscribe: { queue, prefetch, consumerTag: "frozen" } });
setInterval(() => {}, 60_000);
