// A test driver: applies commands one at a time with an advancing log index and a chosen time,
// and shortens command construction.
import { raftmq } from "@raftmq/proto";
import { Broker, type BrokerLimits, type Command, type CommandResult, type DeliverEffect, type Effect } from "../src/index.ts";

export const { ExchangeType, Overflow } = raftmq.v1;

export class Driver {
  index = 0;
  now = 1_000;
  constructor(
    public broker = new Broker(),
    limits?: Partial<BrokerLimits>,
  ) {
    if (limits !== undefined) this.broker = new Broker(limits);
  }

  run(command: Command, at = this.now): { result: CommandResult; effects: Effect[] } {
    this.index++;
    return this.broker.apply(command, { index: this.index, timestamp: at });
  }

  /** Applies and insists on success. */
  ok(command: Command, at = this.now): { result: CommandResult & { ok: true }; effects: Effect[] } {
    const out = this.run(command, at);
    if (!out.result.ok) throw new Error(`expected success, got ${out.result.error.code}: ${out.result.error.message}`);
    return { result: out.result, effects: out.effects };
  }

  queue(name: string, args: raftmq.v1.QueueArguments.$Properties = {}, extra: raftmq.v1.DeclareQueue.$Properties = {}) {
    return this.ok({ declareQueue: { name, arguments: args, ...extra } });
  }

  exchange(name: string, type: raftmq.v1.ExchangeType, extra: raftmq.v1.DeclareExchange.$Properties = {}) {
    return this.ok({ declareExchange: { name, type, ...extra } });
  }

  bind(exchange: string, queue: string, routingKey = "", args: raftmq.v1.Header.$Properties[] = []) {
    return this.ok({ bind: { exchange, queue, routingKey, arguments: args } });
  }

  publish(exchange: string, routingKey: string, body = "m", extra: raftmq.v1.Publish.$Properties = {}) {
    return this.run({ publish: { exchange, routingKey, body: new TextEncoder().encode(body), ...extra } });
  }

  subscribe(consumerId: string, queue: string, prefetch = 0, extra: raftmq.v1.Subscribe.$Properties = {}) {
    return this.ok({ subscribe: { consumerId, sessionId: "s1", queue, prefetch, ...extra } });
  }

  tick(at: number) {
    this.now = at;
    return this.ok({ tick: {} }, at);
  }
}

export function deliveries(effects: Effect[]): DeliverEffect[] {
  return effects.filter((e): e is DeliverEffect => e.kind === "deliver");
}

export function bodies(effects: Effect[]): string[] {
  return deliveries(effects).map((d) => new TextDecoder().decode(d.message.body));
}

export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

export function routed(out: { result: CommandResult }): string[] {
  const r = out.result;
  if (!r.ok || r.kind !== "publish") throw new Error(`not a publish result: ${JSON.stringify(r)}`);
  return r.routedQueues;
}
