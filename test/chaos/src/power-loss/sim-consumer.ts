// A simulated consumer: one consuming session on the leader with manual acks. It records each
// delivery, acks it a little later (so faults find deliveries in flight), and subscribes again on
// whichever node leads when its stream ends, as the SDK's consumer does.
import type { DeliverEffect } from "@raftmq/broker";
import { CommandBuilder } from "@raftmq/server/replicated-core";
import type { SeededRandom } from "../seeded-random.ts";
import type { SimHistory } from "./sim-history.ts";
import type { SimNode } from "./sim-node.ts";
import type { ClientView } from "./sim-producer.ts";

export interface ConsumerOptions {
  readonly queue: string;
  readonly prefetch: number;
  /** Simulated ms between a delivery and its ack, drawn per delivery from [min, max]. */
  readonly ackDelayMs: readonly [number, number];
  /** Wait before subscribing again after the stream ended or no leader was known. */
  readonly reconnectMs: number;
  /** Deliveries waiting for their ack at most; more means the prefetch bound broke. */
  readonly maxPendingAcks: number;
  readonly phase?: "drain";
}

type Connection =
  | { readonly kind: "idle"; readonly retryAt: number }
  | { readonly kind: "open"; readonly node: SimNode; readonly sessionId: string; readonly generation: number };

interface PendingAck {
  readonly value: number;
  readonly deliveryTag: number;
  readonly at: number;
  readonly generation: number;
}

const CONSUMER_TAG = "t";
const builder = new CommandBuilder();
const decoder = new TextDecoder();

export class SimConsumer {
  #connection: Connection = { kind: "idle", retryAt: 0 };
  #generation = 0;
  #pendingAcks: PendingAck[] = [];
  #closed = false;
  deliveries = 0;
  resubscribes = 0;
  /** Simulated time of the last delivery. */
  lastDeliveryAt = 0;

  constructor(
    readonly process: string,
    private readonly options: ConsumerOptions,
    private readonly rng: SeededRandom,
    private readonly history: SimHistory,
    private readonly cluster: ClientView,
  ) {
    if (!(options.maxPendingAcks >= options.prefetch)) throw new RangeError("maxPendingAcks must cover the prefetch");
  }

  get subscribedOn(): SimNode | null {
    return this.#connection.kind === "open" ? this.#connection.node : null;
  }

  step(): void {
    if (this.#closed) return;
    const now = this.cluster.now();
    this.#sendDueAcks(now, false);
    const c = this.#connection;
    if (c.kind === "idle" && now >= c.retryAt) this.#subscribe(now);
  }

  /** Acks what it holds and closes its stream: its session goes down on the leader. */
  close(): void {
    if (this.#closed) return;
    this.#sendDueAcks(this.cluster.now(), true);
    this.#closed = true;
    const c = this.#connection;
    this.#connection = { kind: "idle", retryAt: Number.POSITIVE_INFINITY };
    if (c.kind === "open") c.node.closeSession(c.sessionId);
  }

  #subscribe(now: number): void {
    const leaders = this.cluster.leaders();
    const node = leaders.length === 0 ? undefined : this.rng.pick(leaders);
    const generation = ++this.#generation;
    const sessionId = node?.openSession({
      deliver: (effect, body) => this.#onDelivery(effect, body, generation),
      end: () => this.#onEnd(generation),
    });
    if (node === undefined || sessionId === undefined || sessionId === null) {
      this.#connection = { kind: "idle", retryAt: now + this.options.reconnectMs };
      return;
    }
    this.resubscribes++;
    this.#connection = { kind: "open", node, sessionId, generation };
    const command = builder.subscribe(sessionId, { queue: this.options.queue, consumerTag: CONSUMER_TAG, prefetch: this.options.prefetch });
    try {
      node.submit([command], (_i, outcome) => {
        if (this.#generation !== generation) return;
        if (!outcome.ok || !outcome.result.ok) this.#drop(generation);
      });
    } catch {
      this.#drop(generation);
    }
  }

  #onDelivery(effect: DeliverEffect, body: Uint8Array | null, generation: number): void {
    if (this.#generation !== generation || this.#closed) return;
    // A body the leader lacks reads as no value: the history's check counts it as lost.
    const text = body === null ? "" : decoder.decode(body);
    const value = /^\d+$/.test(text) ? Number(text) : -1;
    this.deliveries++;
    this.lastDeliveryAt = this.cluster.now();
    this.history.record({
      f: "deliver",
      process: this.process,
      type: "ok",
      value,
      queue: effect.queue,
      redelivered: effect.redelivered,
      deliveryTag: effect.deliveryTag,
      ...(this.options.phase === undefined ? {} : { phase: this.options.phase }),
    });
    if (this.#pendingAcks.length >= this.options.maxPendingAcks) {
      throw new Error(`${this.process} holds ${this.#pendingAcks.length} unacked deliveries with prefetch ${this.options.prefetch}`);
    }
    const [lo, hi] = this.options.ackDelayMs;
    this.#pendingAcks.push({ value, deliveryTag: effect.deliveryTag, at: this.cluster.now() + this.rng.int(lo, hi), generation });
  }

  #sendDueAcks(now: number, all: boolean): void {
    if (this.#pendingAcks.length === 0) return;
    const c = this.#connection;
    const keep: PendingAck[] = [];
    for (const a of this.#pendingAcks) {
      if (!all && a.at > now) {
        keep.push(a);
        continue;
      }
      const op = this.history.invoke({ f: "ack", process: this.process, value: a.value, queue: this.options.queue, deliveryTag: a.deliveryTag });
      if (c.kind !== "open" || c.generation !== a.generation || !c.node.hasSession(c.sessionId)) {
        op.fail({ error: "the stream ended" });
        continue;
      }
      try {
        c.node.submit([builder.settle(c.sessionId, "ack", { consumerTag: CONSUMER_TAG, deliveryTag: a.deliveryTag })], null);
        // Acks are sent without awaiting their commit: the outcome is unknown, as in real runs.
        op.info();
      } catch (err) {
        op.fail({ error: err instanceof Error ? err.name : String(err) });
      }
    }
    this.#pendingAcks = keep;
  }

  #onEnd(generation: number): void {
    if (this.#generation !== generation) return;
    this.#drop(generation);
  }

  #drop(generation: number): void {
    if (this.#generation !== generation || this.#closed) return;
    const c = this.#connection;
    if (c.kind === "open") c.node.closeSession(c.sessionId);
    this.#generation++;
    // Their stream is gone: the acks cannot be sent, and the session's end requeues the messages.
    for (const a of this.#pendingAcks) {
      this.history.invoke({ f: "ack", process: this.process, value: a.value, queue: this.options.queue, deliveryTag: a.deliveryTag }).fail({ error: "the stream ended" });
    }
    this.#pendingAcks = [];
    this.#connection = { kind: "idle", retryAt: this.cluster.now() + this.options.reconnectMs };
  }
}
