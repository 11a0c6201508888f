// Model-based property tests: random command sequences against invariants a broker must keep,
// and determinism of snapshots. A failing run prints its seed and the shrunk sequence.
import { raftmq } from "@raftmq/proto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Broker, type BrokerMessage, type CommandResult, type Effect, type NewBody } from "../src/index.ts";
import { keepBodies, shelve, text } from "./broker-driver.ts";

const { CommandBatch, ExchangeType } = raftmq.v1;

type Op =
  | { op: "publish"; target: "q1" | "q2" | "both"; expire: boolean }
  | { op: "subscribe"; consumer: string; session: string; queue: "q1" | "q2"; prefetch: number; noAck: boolean }
  | { op: "cancel" | "down"; consumer: string }
  | { op: "prefetch"; consumer: string; prefetch: number }
  | { op: "settle"; how: "ack" | "nack" | "reject"; consumer: string | null; session: string; tag: number; multiple: boolean; requeue: boolean }
  | { op: "get"; queue: "q1" | "q2"; session: string; noAck: boolean }
  | { op: "tick"; dt: number }
  | { op: "sessionDown"; session: string };

const consumerArb = fc.constantFrom("c0", "c1", "c2", "c3");
const sessionArb = fc.constantFrom("s0", "s1");
const queueArb = fc.constantFrom<"q1" | "q2">("q1", "q2");

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("publish" as const), target: fc.constantFrom<"q1" | "q2" | "both">("q1", "q2", "both"), expire: fc.boolean() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("subscribe" as const),
      consumer: consumerArb,
      session: sessionArb,
      queue: queueArb,
      prefetch: fc.integer({ min: 0, max: 3 }),
      noAck: fc.constant(false),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom<"cancel" | "down">("cancel", "down"), consumer: consumerArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("prefetch" as const), consumer: consumerArb, prefetch: fc.integer({ min: 0, max: 3 }) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("settle" as const),
      how: fc.constantFrom<"ack" | "nack" | "reject">("ack", "nack", "reject"),
      consumer: fc.option(consumerArb, { freq: 4 }),
      session: sessionArb,
      tag: fc.integer({ min: 0, max: 12 }),
      multiple: fc.boolean(),
      requeue: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("get" as const), queue: queueArb, session: sessionArb, noAck: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("tick" as const), dt: fc.integer({ min: 0, max: 150 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("sessionDown" as const), session: sessionArb }) },
);

const noAckSubscribeArb = fc.record({
  op: fc.constant("subscribe" as const),
  consumer: fc.constant("fast"),
  session: sessionArb,
  queue: queueArb,
  prefetch: fc.constant(0),
  noAck: fc.constant(true),
});

const opsArb = fc.array(fc.oneof({ weight: 30, arbitrary: opArb }, { weight: 1, arbitrary: noAckSubscribeArb }), { maxLength: 120 });

/** Mostly publishes and no_ack consumers coming and going: ready messages pile up, then drain in shares. */
const noAckOpsArb = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: opArb },
    { weight: 6, arbitrary: fc.record({ op: fc.constant("publish" as const), target: fc.constantFrom<"q1" | "q2" | "both">("q1", "q2", "both"), expire: fc.boolean() }) },
    { weight: 2, arbitrary: noAckSubscribeArb.map((o) => ({ ...o, consumer: o.queue === "q1" ? "fast" : "fast2" })) },
    { weight: 1, arbitrary: fc.record({ op: fc.constantFrom<"cancel" | "down">("cancel", "down"), consumer: fc.constantFrom("fast", "fast2") }) },
  ),
  { maxLength: 120 },
);

/** Turns ops into commands; bodies are numbered so every published message is distinct. */
class Script {
  private n = 0;
  time = 1000;

  command(o: Op): raftmq.v1.Command.$Properties {
    switch (o.op) {
      case "publish": {
        const body = new TextEncoder().encode(`m${this.n++}`);
        const properties = o.expire ? { expiration: "120" } : {};
        if (o.target === "both") return { publish: { exchange: "amq.fanout", body, properties } };
        return { publish: { exchange: "", routingKey: o.target, body, properties } };
      }
      case "subscribe":
        return { subscribe: { consumerId: o.consumer, sessionId: o.session, queue: o.queue, prefetch: o.prefetch, noAck: o.noAck } };
      case "cancel":
        return { cancel: { consumerId: o.consumer } };
      case "down":
        return { consumerDown: { consumerId: o.consumer } };
      case "prefetch":
        return { setPrefetch: { consumerId: o.consumer, prefetch: o.prefetch } };
      case "settle": {
        const target = o.consumer === null ? { sessionId: o.session } : { consumerId: o.consumer };
        if (o.how === "ack") return { ack: { ...target, deliveryTag: o.tag, multiple: o.multiple } };
        if (o.how === "nack") return { nack: { ...target, deliveryTag: o.tag, multiple: o.multiple, requeue: o.requeue } };
        return { reject: { ...target, deliveryTag: o.tag, requeue: o.requeue } };
      }
      case "get":
        return { get: { queue: o.queue, sessionId: o.session, noAck: o.noAck } };
      case "tick":
        this.time += o.dt;
        return { tick: {} };
      case "sessionDown":
        return { sessionDown: { sessionId: o.session } };
    }
  }

  entry(commands: raftmq.v1.Command.$Properties[]): Uint8Array {
    return CommandBatch.encode({ timestampMs: this.time, commands }).finish();
  }
}

const setup: raftmq.v1.Command.$Properties[] = [
  { declareExchange: { name: "dlx", type: ExchangeType.EXCHANGE_TYPE_FANOUT } },
  { declareQueue: { name: "sink" } },
  { bind: { exchange: "dlx", queue: "sink" } },
  { declareQueue: { name: "q1", arguments: { deadLetterExchange: "dlx", messageTtlMs: 200, maxLength: 5 } } },
  { declareQueue: { name: "q2", arguments: { deadLetterExchange: "dlx", deliveryLimit: 2 } } },
  { bind: { exchange: "amq.fanout", queue: "q1" } },
  { bind: { exchange: "amq.fanout", queue: "q2" } },
];

/** `ops` as log entries; `machineVersion` > 1 moves the state to that version first. */
function entries(ops: Op[], machineVersion = 1): Uint8Array[] {
  const script = new Script();
  const out = [script.entry(machineVersion > 1 ? [{ setClusterSettings: { machineVersion } }, ...setup] : setup)];
  for (const o of ops) {
    const c = script.command(o);
    out.push(script.entry([c]));
  }
  return out;
}

function runAll(broker: Broker, log: Uint8Array[], from = 0): { results: CommandResult[]; effects: Effect[]; bodies: NewBody[] }[] {
  return log.slice(from).map((data, i) => {
    const out = broker.applyEntry(from + i + 1, data);
    keepBodies(out.bodies);
    return out;
  });
}

const bodyOf = (m: BrokerMessage) => text(m);

describe("broker model properties", () => {
  it.each([
    ["default limits", {}, opsArb],
    ["a no_ack share of one delivery per apply", { maxNoAckDeliveriesPerApply: 1 }, noAckOpsArb],
  ] as const)("never lets two holders have the same message, and conserves every routed message (%s)", (_name, limits, opsOf) => {
    fc.assert(
      fc.property(opsOf, (ops) => {
        const broker = new Broker(limits);
        const script = new Script();
        // Held deliveries: holder ("c:<id>" or "s:<session>") -> tag -> message key.
        const held = new Map<string, Map<number, string>>();
        const holderOfKey = new Map<string, string>();
        const noAckConsumers = new Set<string>();
        let routedCopies = 0;
        let consumed = 0;
        let index = 0;
        const release = (holder: string, tags: number[] | "all") => {
          const h = held.get(holder);
          if (h === undefined) return;
          const list = tags === "all" ? [...h.keys()] : tags;
          for (const t of list) {
            const key = h.get(t);
            if (key !== undefined) holderOfKey.delete(key);
            h.delete(t);
          }
        };
        const tagsUpTo = (holder: string, tag: number, multiple: boolean): number[] => {
          const h = held.get(holder) ?? new Map<number, string>();
          if (multiple && tag === 0) return [...h.keys()];
          return multiple ? [...h.keys()].filter((t) => t <= tag) : [tag];
        };
        const hold = (holder: string, tag: number, key: string) => {
          expect(holderOfKey.get(key), `message ${key} delivered to ${holder} while held by another`).toBeUndefined();
          holderOfKey.set(key, holder);
          let h = held.get(holder);
          if (h === undefined) {
            h = new Map();
            held.set(holder, h);
          }
          h.set(tag, key);
        };
        const step = (c: raftmq.v1.Command.$Properties, o: Op | null) => {
          const { results, effects, bodies } = broker.applyEntry(++index, script.entry([c]));
          keepBodies(bodies);
          const r = results[0];
          expect(r).toBeDefined();
          if (r === undefined) return;
          if (r.ok && r.kind === "publish" && !r.duplicate) routedCopies += r.routedQueues.length;
          if (r.ok && o !== null && o.op === "settle") {
            const holder = o.consumer === null ? `s:${o.session}` : `c:${o.consumer}`;
            const tags = tagsUpTo(holder, o.tag, o.multiple && o.how !== "reject");
            if (o.how === "ack") consumed += tags.length;
            release(holder, tags);
          }
          if (r.ok && o !== null && o.op === "down") release(`c:${o.consumer}`, "all");
          if (r.ok && r.kind === "sessionDown") {
            for (const cid of r.consumers) release(`c:${cid}`, "all");
            release(`s:${(c.sessionDown?.sessionId ?? "") as string}`, "all");
          }
          if (r.ok && r.kind === "subscribe" && c.subscribe?.noAck) noAckConsumers.add(r.consumerId);
          if (r.ok && r.kind === "get" && !r.empty) {
            if (r.deliveryTag === 0) consumed++;
            else hold(`s:${c.get?.sessionId ?? ""}`, r.deliveryTag, `${c.get?.queue}/${bodyOf(r.message)}`);
          }
          for (const e of effects) {
            if (e.kind === "deliver") {
              if (noAckConsumers.has(e.consumer.id)) consumed++;
              else hold(`c:${e.consumer.id}`, e.deliveryTag, `${e.queue}/${bodyOf(e.message)}`);
            }
            if (e.kind === "consumerCancelled") release(`c:${e.consumer.id}`, "all");
          }
          // A consumer that settled everything after cancel is gone; ConsumerDown of it is NOT_FOUND.
          if (!r.ok && o !== null && o.op === "down") release(`c:${o.consumer}`, "all");
        };
        for (const c of setup) step(c, null);
        for (const o of ops) step(script.command(o), o);
        step({ sessionDown: { sessionId: "s0" } }, null);
        step({ sessionDown: { sessionId: "s1" } }, null);
        const info = (q: string) => broker.queueInfo(q);
        for (const q of ["q1", "q2", "sink"]) expect(info(q)?.messagesUnacknowledged).toBe(0);
        const remaining = (info("q1")?.messagesReady ?? 0) + (info("q2")?.messagesReady ?? 0) + (info("sink")?.messagesReady ?? 0);
        expect(consumed + remaining).toBe(routedCopies);
      }),
      { numRuns: 300 },
    );
  });

  it("delivers in FIFO order to a single consumer without requeues", () => {
    const actions = fc.array(
      fc.oneof(
        fc.record({ op: fc.constant("publish" as const), n: fc.integer({ min: 1, max: 4 }) }),
        fc.record({ op: fc.constant("ack" as const), multiple: fc.boolean() }),
        fc.record({ op: fc.constant("get" as const) }),
      ),
      { maxLength: 80 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 }), actions, (prefetch, acts) => {
        const broker = new Broker();
        let index = 0;
        const run = (c: raftmq.v1.Command.$Properties) => {
          const out = broker.apply(c, { index: ++index, timestamp: 1 });
          shelve(broker);
          return out;
        };
        run({ declareQueue: { name: "q" } });
        run({ subscribe: { consumerId: "c", sessionId: "s", queue: "q", prefetch } });
        const seen: number[] = [];
        const unacked: number[] = [];
        let published = 0;
        const collect = (effects: Effect[]) => {
          for (const e of effects) {
            if (e.kind !== "deliver") continue;
            seen.push(Number(bodyOf(e.message)));
            unacked.push(e.deliveryTag);
          }
        };
        for (const a of acts) {
          if (a.op === "publish") {
            for (let i = 0; i < a.n; i++) collect(run({ publish: { routingKey: "q", body: new TextEncoder().encode(String(published++)) } }).effects);
          } else if (a.op === "get") {
            const g = run({ get: { queue: "q", noAck: true } });
            if (g.result.ok && g.result.kind === "get" && !g.result.empty) seen.push(Number(bodyOf(g.result.message)));
          } else if (unacked.length > 0) {
            const tag = a.multiple ? (unacked[unacked.length - 1] as number) : (unacked[0] as number);
            const out = run({ ack: { consumerId: "c", deliveryTag: tag, multiple: a.multiple } });
            expect(out.result.ok).toBe(true);
            if (a.multiple) unacked.length = 0;
            else unacked.shift();
            collect(out.effects);
          }
        }
        expect(seen).toEqual([...seen].sort((x, y) => x - y));
        expect(new Set(seen).size).toBe(seen.length);
      }),
      { numRuns: 200 },
    );
  });

  // A share of one message leaves no_ack backlogs between applies, which a snapshot must carry.
  // From version 7 the ready messages never taken are written as columns, the others as runs.
  it.each([
    ["default limits", {}, opsArb, 1],
    ["a no_ack share of one delivery per apply", { maxNoAckDeliveriesPerApply: 1 }, noAckOpsArb, 1],
    ["state-machine version 7", {}, opsArb, 7],
  ] as const)("restoring a snapshot at any point gives identical later results, effects and bytes (%s)", (_name, limits, opsOf, version) => {
    fc.assert(
      fc.property(opsOf, fc.nat(), (ops, cut) => {
        const log = entries(ops, version);
        const at = cut % log.length;
        const a = new Broker(limits);
        runAll(a, log.slice(0, at));
        const snap = a.snapshot();
        const b = Broker.restore(snap, limits);
        expect(b.snapshot()).toEqual(snap);
        const fromA = runAll(a, log, at);
        const fromB = runAll(b, log, at);
        expect(fromB).toEqual(fromA);
        expect(b.snapshot()).toEqual(a.snapshot());
        expect(b.listQueues()).toEqual(a.listQueues());
      }),
      { numRuns: 200 },
    );
  });

  it("two brokers fed the same log produce identical snapshot bytes", () => {
    fc.assert(
      fc.property(opsArb, (ops) => {
        const log = entries(ops);
        const a = new Broker();
        const b = new Broker();
        runAll(a, log);
        runAll(b, log);
        expect(Buffer.from(b.snapshot()).equals(Buffer.from(a.snapshot()))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});
