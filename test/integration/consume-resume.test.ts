// A Consume stream outlives a leader change: the node holding the client's stream moves its
// consumers to a session on the new leader and announces it as resumed. The client here is a
// plain gRPC stream, as a program written from proto/ alone would open, with no resubscription
// logic of its own: what it held unsettled comes again with higher delivery tags, settling an old
// tag is answered with an error naming it, and everything published before and after arrives.
import { describe, expect, it } from "vitest";
import { eventually, GrpcStatus, publishRange, type raftmq, type TestClient, waitForLeader, waitForNewLeader } from "./broker-test-client.ts";
import { useThreeNodeCluster } from "./three-node-cluster.ts";

const { harness, ids, client } = useThreeNodeCluster("consume-resume", ["--tick-ms", "50", "--log-level", "info"]);

interface Seen {
  seq: number;
  tag: number;
  redelivered: boolean;
}

/** A raw Consume stream that records every response and settles only when told. */
class RawStream {
  readonly responses: raftmq.v1.ConsumeResponse[] = [];
  readonly deliveries: Seen[] = [];
  /** How many deliveries had come when each session was announced. */
  readonly deliveriesAtSession: number[] = [];
  status: { code: number; details: string } | null = null;
  private readonly stream: ReturnType<TestClient["consume"]>;

  constructor(
    c: TestClient,
    readonly tag: string,
    extra: Record<string, string> = {},
  ) {
    this.stream = c.consume(extra);
    this.stream.on("data", (r: raftmq.v1.ConsumeResponse) => {
      this.responses.push(r);
      if (r.kind === "session") this.deliveriesAtSession.push(this.deliveries.length);
      const batch = r.kind === "delivery" ? [r.delivery] : r.kind === "deliveries" ? (r.deliveries?.deliveries ?? []) : [];
      for (const d of batch) {
        if (d == null) continue;
        this.deliveries.push({ seq: Number(new TextDecoder().decode(d.body ?? new Uint8Array())), tag: Number(d.deliveryTag), redelivered: d.redelivered ?? false });
      }
    });
    this.stream.on("error", () => {});
    this.stream.on("status", (s) => {
      this.status = { code: s.code, details: s.details };
    });
  }

  write(r: raftmq.v1.ConsumeRequest.$Properties): void {
    this.stream.write(r);
  }

  ack(deliveryTag: number, multiple = false): void {
    this.write({ ack: { consumerTag: this.tag, deliveryTag, multiple } });
  }

  sessions(): raftmq.v1.SessionOpened[] {
    return this.responses.filter((r) => r.kind === "session").map((r) => r.session as raftmq.v1.SessionOpened);
  }

  errors(): raftmq.v1.CommandError[] {
    return this.responses.filter((r) => r.kind === "error").map((r) => r.error as raftmq.v1.CommandError);
  }

  kindsAfter(index: number): string[] {
    return this.responses.slice(index).map((r) => r.kind ?? "");
  }

  async until<T>(what: string, check: () => T | undefined, timeoutMs = 20_000): Promise<T> {
    return eventually(
      `${what} (status ${JSON.stringify(this.status)}, kinds ${this.responses.map((r) => r.kind).join(",")})`,
      async () => {
        if (this.status !== null) throw new Error(`the stream ended: ${this.status.code} ${this.status.details}`);
        return check();
      },
      timeoutMs,
    );
  }

  cancel(): void {
    this.stream.cancel();
  }
}

const seqsOf = (seen: Seen[]) => [...new Set(seen.map((d) => d.seq))].sort((a, b) => a - b);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

async function publish(c: TestClient, queue: string, producerId: string, from: number, to: number): Promise<void> {
  const out = await publishRange(c, { exchange: "", routingKey: queue, producerId, from, to, perRequest: 5, window: 2 });
  expect(out.confirmed.length).toBe(to - from);
}

/**
 * Takes deliveries until `held` of them are unsettled, having acked `acked` first; returns the
 * highest delivery tag given. Prefetch 5: the acks free room for more.
 */
async function holdSome(s: RawStream, acked: number): Promise<number> {
  await s.until("the first deliveries", () => (s.deliveries.length >= 5 ? true : undefined));
  for (let t = 1; t <= acked; t++) s.ack(t);
  await s.until("deliveries after the acks", () => (s.deliveries.length >= 5 + acked ? true : undefined));
  return Math.max(...s.deliveries.map((d) => d.tag));
}

/** Acks every delivery that comes from `from` on, until `seqs` have all arrived. */
async function ackUntil(s: RawStream, from: number, seqs: number[]): Promise<void> {
  let next = from;
  await s.until(`messages ${seqs[0]}..${seqs.at(-1)}`, () => {
    for (; next < s.deliveries.length; next++) s.ack(s.deliveries[next]?.tag ?? 0);
    const got = new Set(s.deliveries.map((d) => d.seq));
    return seqs.every((q) => got.has(q)) ? true : undefined;
  });
}

async function drained(c: TestClient, queue: string): Promise<void> {
  await eventually(`queue ${queue} empty`, async () => {
    const q = (await c.call("QueueInfo", { name: queue }, 2000)).queue;
    return Number(q?.messagesReady) === 0 && Number(q?.messagesUnacked) === 0 ? true : undefined;
  });
}

/** Checks what a resumed stream promises after it held tags up to `highest` with some unsettled. */
function expectResumed(s: RawStream, resumedAt: number, highest: number): void {
  const sessions = s.sessions();
  expect(sessions.map((x) => x.resumed)).toEqual([false, true]);
  expect(sessions[1]?.sessionId).not.toBe(sessions[0]?.sessionId);
  // The consumer is announced again before any delivery of the new session.
  const after = s.kindsAfter(resumedAt);
  const firstDelivery = after.findIndex((k) => k === "delivery" || k === "deliveries");
  expect(after.indexOf("subscribed")).toBeGreaterThanOrEqual(0);
  expect(after.indexOf("subscribed")).toBeLessThan(firstDelivery);
  // Tags keep rising: no tag of the new session repeats one given before.
  const before = s.deliveries.filter((d) => d.tag <= highest);
  const later = s.deliveries.slice(before.length);
  expect(later.every((d) => d.tag > highest)).toBe(true);
}

/**
 * Declares `queue` with messages 0..19 through node `via`, and opens on node `on` a stream that
 * acks its first 3 deliveries and holds the next 5 unsettled; returns it and its highest tag.
 */
async function holdingStream(via: number, on: number, queue: string, producerId: string, tag: string, extra: Record<string, string> = {}) {
  await client(via).callRetrying("DeclareQueue", { name: queue, durable: true });
  await publish(client(via), queue, producerId, 0, 20);
  const s = new RawStream(client(on), tag, extra);
  s.write({ subscribe: { queue, prefetch: 5, consumerTag: tag } });
  const highest = await holdSome(s, 3);
  return { s, highest };
}

/** Where the resumed session was announced among the stream's responses. */
const resumedIndex = (s: RawStream) => s.responses.findIndex((r) => r.kind === "session" && r.session?.resumed === true);

/**
 * After the resume: messages 20..29 published through node `via` arrive on the same stream with
 * all before them, acked; the queue ends empty and the stream open, and node `holder` logged the
 * resume. Returns how many deliveries had come before the resumed session.
 */
async function expectEverythingAfterResume(s: RawStream, highest: number, via: number, holder: number, queue: string, producerId: string): Promise<number> {
  const resumedAt = resumedIndex(s);
  const seenBefore = s.deliveriesAtSession[1] ?? 0;
  await publish(client(via), queue, producerId, 20, 30);
  await ackUntil(s, seenBefore, range(0, 30));
  expectResumed(s, resumedAt, highest);
  expect(seqsOf(s.deliveries)).toEqual(range(0, 30));
  await drained(client(via), queue);
  expect(s.status).toBeNull();
  expect(harness.eventCount(holder, "consume-stream-resumed")).toBeGreaterThanOrEqual(1);
  return seenBefore;
}

describe("a Consume stream across a leader change", () => {
  it("held by the leader: a leadership transfer moves its consumer to the new leader; what it held comes again, an old tag's ack is answered, nothing is lost", async () => {
    const leader = await waitForLeader(ids.map(client));
    const target = ids.find((id) => id !== leader) as number;
    const queue = "resume-transfer";
    const { s, highest } = await holdingStream(leader, leader, queue, "p-transfer", "c1", { "raftmq-heartbeat-ms": "200" });
    const heldSeqs = s.deliveries.filter((d) => d.tag > 3).map((d) => d.seq);
    expect(heldSeqs.length).toBe(5);

    await client(target).callRetrying("TransferLeadership", { to: target });
    await s.until("a resumed session", () => (s.sessions().length === 2 ? true : undefined));
    // An ack of a delivery the old session gave is void, and says so, naming its tag.
    s.ack(4);
    await s.until("the answer to the stale ack", () => s.errors().find((e) => Number(e.deliveryTag) === 4));
    expect(s.errors().find((e) => Number(e.deliveryTag) === 4)?.code).toBe(GrpcStatus.UNAVAILABLE);

    const seenBefore = await expectEverythingAfterResume(s, highest, target, leader, queue, "p-transfer");
    // What the first session held unsettled came again, marked redelivered.
    const again = s.deliveries.slice(seenBefore);
    for (const seq of heldSeqs) expect(again.find((d) => d.seq === seq)?.redelivered, `message ${seq}`).toBe(true);
    s.cancel();
  });

  it("held by a follower: the leader's SIGKILL does not end it; its consumer continues on the next leader", async () => {
    const leader = await waitForLeader(ids.map(client));
    const holder = ids.find((id) => id !== leader) as number;
    const queue = "resume-kill";
    const { s, highest } = await holdingStream(leader, holder, queue, "p-kill", "c2");

    await harness.stop(leader, "SIGKILL");
    const survivors = ids.filter((id) => id !== leader);
    await s.until("a resumed session", () => (s.sessions().length === 2 ? true : undefined), 30_000);
    const next = await waitForNewLeader(survivors.map(client), leader);
    await expectEverythingAfterResume(s, highest, next, holder, queue, "p-kill");
    s.cancel();
    await harness.start(leader, { members: ids });
    await waitForLeader(ids.map(client));
  });

  it("whose consumer's exclusive queue went with the old session: ends UNAVAILABLE, saying to subscribe again", async () => {
    const leader = await waitForLeader(ids.map(client));
    const holder = ids.find((id) => id !== leader) as number;
    const s = new RawStream(client(holder), "c3");
    const session = await s.until("the session", () => s.sessions()[0]);
    const declared = await client(holder).callRetrying("DeclareQueue", { name: "", exclusive: true, sessionId: session.sessionId });
    s.write({ subscribe: { queue: declared.name, prefetch: 5, consumerTag: "c3" } });
    await s.until("subscribed", () => (s.responses.some((r) => r.kind === "subscribed") ? true : undefined));

    const target = ids.find((id) => id !== leader && id !== holder) as number;
    await client(target).callRetrying("TransferLeadership", { to: target });
    const end = await eventually("the stream's end", async () => s.status ?? undefined);
    expect(end.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(end.details).toMatch(/consumer "c3" could not be subscribed again.*subscribe again/);
  });
});
