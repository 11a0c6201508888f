// A test driver: applies commands one at a time with an advancing log index and a chosen time,
// and shortens command construction.
import { lengthPrefix, Reader, raftmq } from "@raftmq/proto";
import { type BodyRef, Broker, type NewBody, type BrokerLimits, type Command, type CommandResult, type DeliverEffect, type Effect, MACHINE_VERSION } from "../src/index.ts";

/**
 * The bodies brokers of this test file handed out to be stored, by key, as a node's body store
 * keeps them; a later broker's body replaces an earlier one's of the same key.
 */
const shelf = new Map<number, Uint8Array>();

/** Keeps the bodies `broker` asks to store (after an apply, or a restore from an older snapshot). */
export function shelve(broker: Broker): void {
  keepBodies(broker.takeNewBodies());
}

/** Keeps bodies an applyEntry returned. */
export function keepBodies(bodies: readonly NewBody[]): void {
  for (const b of bodies) shelf.set(b.key, b.bytes);
}

/** The bytes of a stored body, as a node reads them back. */
export function bodyBytes(ref: BodyRef): Uint8Array {
  if (ref.bodySize === 0) return new Uint8Array(0);
  const bytes = shelf.get(ref.bodyKey);
  if (bytes === undefined) throw new Error(`body ${ref.bodyKey} was never stored`);
  if (bytes.length !== ref.bodySize) throw new Error(`body ${ref.bodyKey} has ${bytes.length} bytes, its reference says ${ref.bodySize}`);
  return bytes;
}

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
    const out = this.broker.apply(command, { index: this.index, timestamp: at });
    shelve(this.broker);
    return out;
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

  /** exchange.bind: `destination` receives what `source` routes with the key (version 6 and later). */
  bindExchange(source: string, destination: string, routingKey = "", args: raftmq.v1.Header.$Properties[] = []) {
    return this.ok({ bind: { exchange: source, destinationExchange: destination, routingKey, arguments: args } });
  }

  publish(exchange: string, routingKey: string, body = "m", extra: raftmq.v1.Publish.$Properties = {}) {
    return this.run({ publish: { exchange, routingKey, body: new TextEncoder().encode(body), ...extra } });
  }

  subscribe(consumerId: string, queue: string, prefetch = 0, extra: raftmq.v1.Subscribe.$Properties = {}) {
    return this.ok({ subscribe: { consumerId, sessionId: "s1", queue, prefetch, ...extra } });
  }

  /** Moves the state machine to `version` (the newest by default), as an upgraded cluster does. */
  upgrade(version = MACHINE_VERSION) {
    return this.ok({ setClusterSettings: { machineVersion: version } });
  }

  tick(at: number) {
    this.now = at;
    return this.ok({ tick: {} }, at);
  }
}

/** The error code a command answered, or "ok". */
export function outcomeOf(out: { result: CommandResult }): string {
  return out.result.ok ? "ok" : out.result.error.code;
}

export function deliveries(effects: Effect[]): DeliverEffect[] {
  return effects.filter((e): e is DeliverEffect => e.kind === "deliver");
}

export function bodies(effects: Effect[]): string[] {
  return deliveries(effects).map((d) => new TextDecoder().decode(bodyBytes(d.message)));
}

/** A body's text: its bytes, or the reference a message holds to its stored bytes. */
export function text(b: Uint8Array | BodyRef): string {
  return new TextDecoder().decode(b instanceof Uint8Array ? b : bodyBytes(b));
}

export function routed(out: { result: CommandResult }): string[] {
  const r = out.result;
  if (!r.ok || r.kind !== "publish") throw new Error(`not a publish result: ${JSON.stringify(r)}`);
  return r.routedQueues;
}

/** The snapshot's first piece rewritten by `edit`, the rest unchanged. */
export function editFirstPiece(bytes: Uint8Array, edit: (first: raftmq.v1.BrokerSnapshot) => void): Uint8Array {
  const reader = Reader.create(bytes.subarray(2));
  const length = reader.uint32();
  const start = 2 + reader.pos;
  const first = raftmq.v1.BrokerSnapshot.decode(bytes.subarray(start, start + length));
  edit(first);
  const body = raftmq.v1.BrokerSnapshot.encode(first).finish();
  return Buffer.concat([bytes.subarray(0, 2), lengthPrefix(body.length), body, bytes.subarray(start + length)]);
}
