// A consumer process the chaos run makes vanish (frozen, killed, or cut off and killed): it
// subscribes at one node, takes deliveries without ever acknowledging them, and prints one JSON
// line per event for the harness to record. A stream that ends is opened again at the next
// address, as a client would, so the process holds deliveries whenever it vanishes.
//   node --import tsx vanishing-consumer-main.ts <queue> <prefetch> <consumer tag> <address>[,<address>…]
// Credentials and the CA, when the cluster has them, come in RAFTMQ_CHAOS_CLIENT as JSON.

import type { raftmq } from "@raftmq/proto";
import { brokerServiceDefinition } from "@raftmq/proto/grpc";
// The channel helpers alone, not the node's whole package: the process starts in well under a second.
import { type ChannelCredentials, type Client, type ClientDuplexStream, connectClient, Metadata, tlsCredentials } from "../../../packages/server/src/service-client.ts";
import { CLIENT_ENV, type ClientIdentity, type VanisherEvent } from "./vanisher-events.ts";

type ConsumeStream = ClientDuplexStream<raftmq.v1.ConsumeRequest.$Properties, raftmq.v1.ConsumeResponse>;

interface Auth {
  readonly channel?: ChannelCredentials;
  readonly metadata: Metadata;
}

/** A stream that ended is opened again after this. */
const RESUBSCRIBE_MS = 200;

function say(e: VanisherEvent): void {
  process.stdout.write(`${JSON.stringify(e)}\n`);
}

function authFrom(identity: ClientIdentity): Auth {
  const metadata = new Metadata();
  if (identity.username !== undefined && identity.password !== undefined) {
    metadata.set("authorization", `Basic ${Buffer.from(`${identity.username}:${identity.password}`).toString("base64")}`);
  }
  return { ...(identity.ca === undefined ? {} : { channel: tlsCredentials(Buffer.from(identity.ca)) }), metadata };
}

function consume(queue: string, prefetch: number, consumerTag: string, addresses: readonly string[], auth: Auth): void {
  const clients = new Map<string, Client>();
  const def = brokerServiceDefinition.Consume;
  let turn = 0;
  const open = () => {
    const address = addresses[turn++ % addresses.length] ?? "";
    let client = clients.get(address);
    if (client === undefined) {
      client = connectClient(address, {}, auth.channel);
      clients.set(address, client);
    }
    const stream = client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, auth.metadata) as ConsumeStream;
    let ended = false;
    const end = (details: string) => {
      if (ended) return;
      ended = true;
      say({ event: "ended", address, details });
      setTimeout(open, RESUBSCRIBE_MS);
    };
    stream.on("data", (r: raftmq.v1.ConsumeResponse) => {
      if (r.kind === "subscribed") say({ event: "subscribed", address });
      else if (r.kind === "delivery" && r.delivery != null) {
        const text = Buffer.from(r.delivery.body ?? []).toString("utf8");
        say({ event: "delivery", value: /^\d+$/.test(text) ? Number(text) : -1, deliveryTag: Number(r.delivery.deliveryTag), redelivered: r.delivery.redelivered === true });
      } else if (r.kind === "error" || r.kind === "cancelled") {
        stream.cancel();
        end(r.kind === "error" ? (r.error?.message ?? "error") : "cancelled");
      }
    });
    stream.on("status", (s: { code: number; details: string }) => end(`status ${s.code}: ${s.details}`));
    stream.on("error", () => {
      // Reported by the status event.
    });
    stream.write({ subscribe: { queue, prefetch, consumerTag } });
  };
  open();
}

const [queue, prefetchText, consumerTag, addressList] = process.argv.slice(2);
const prefetch = Number(prefetchText);
const addresses = (addressList ?? "").split(",").filter((a) => a !== "");
if (queue === undefined || consumerTag === undefined || !(prefetch > 0) || addresses.length === 0) {
  process.stderr.write("usage: vanishing-consumer-main.ts <queue> <prefetch> <consumer tag> <address>[,<address>…]\n");
  process.exit(2);
}
consume(queue, prefetch, consumerTag, addresses, authFrom(JSON.parse(process.env[CLIENT_ENV] ?? "{}") as ClientIdentity));
// The process lives until the harness freezes or kills it.
setInterval(() => {}, 60_000);
