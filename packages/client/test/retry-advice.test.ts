// A node that refuses for want of resources says how long to wait (google.rpc.RetryInfo): the
// SDK's errors carry it, and its publisher waits at least that long before sending again,
// instead of retrying at once against a node whose alarm is raised.
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { connect, type RaftmqClient, ResourceExhaustedError } from "../src/index.ts";
import { FakeNode } from "./fake-node.ts";

const cleanups: (() => void)[] = [];

afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function start(): Promise<{ node: FakeNode; client: RaftmqClient }> {
  const node = new FakeNode();
  await node.start();
  cleanups.push(() => node.stop());
  const client = await connect([node.address]);
  cleanups.push(() => client.close());
  return { node, client };
}

const ALARM_DELAY_MS = 700;
const alarm = { code: grpc.status.RESOURCE_EXHAUSTED, details: "publishing is blocked: memory alarm", reason: "RESOURCE_ALARM", outcome: "not_applied", retryDelayMs: ALARM_DELAY_MS } as const;

describe("retry advice", () => {
  it("is on the error of a refused call", async () => {
    const { node, client } = await start();
    node.gate = (c) => (c.method === "Broker/DeclareQueue" ? alarm : null);
    const err = await client.declareQueue("q").then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect(err).toMatchObject({ reason: "RESOURCE_ALARM", outcome: "not_applied", retryDelayMs: ALARM_DELAY_MS });
  });

  it("holds the publisher back for the delay the node asked for, and the message is confirmed once the alarm clears", async () => {
    const { node, client } = await start();
    let refusals = 3;
    node.gate = (c) => (c.method === "Broker/PublishStream" && refusals-- > 0 ? alarm : null);
    const publisher = client.createPublisher();
    cleanups.push(() => void publisher.close().catch(() => undefined));
    const confirm = await publisher.publish("", "q", "order 1");
    expect(confirm.routedQueues).toEqual(["q"]);
    const attempts = node.calls.filter((c) => c.method === "Broker/PublishStream").map((c) => c.at);
    expect(attempts).toHaveLength(4);
    // The SDK's own first retries go at once; these waited for the node's delay each time.
    for (let i = 1; i < attempts.length; i++) expect((attempts[i] as number) - (attempts[i - 1] as number)).toBeGreaterThanOrEqual(ALARM_DELAY_MS - 50);
  });
});
