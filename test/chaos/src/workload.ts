// The chaos workload through the SDK: pipelined producers with confirms and idempotent producer
// ids publish unique integers to several queues; consumers with manual acks read them; at the
// end a drain reads every queue until it is empty. Every step goes to the history. Some
// consumers stay attached past the drain, so the liveness check can ask for exactly those.

import { setTimeout as sleep } from "node:timers/promises";
import { type Consumer, ClosedError, connect, type Delivery, PublishNackError, type RaftmqClient } from "@raftmq/client";
import type { ChaosWorkload } from "./chaos-workload.ts";
import type { HistoryRecorder } from "./history-recorder.ts";
import { SeededRandom } from "./seeded-random.ts";

export interface WorkloadOptions {
  readonly queues: readonly string[];
  readonly producers: number;
  /** Consumers per queue. */
  readonly consumersPerQueue: number;
  /** Of those, how many stay attached through stop() and the drain, until closeKept(). */
  readonly keptOpenPerQueue: number;
  /** Publishes per second per producer. */
  readonly ratePerProducer: number;
  /** Publishes a producer has awaiting confirms at most. */
  readonly window: number;
  readonly prefetch: number;
  /** How long the end of the run waits for outstanding confirms before giving them up as unknown. */
  readonly flushTimeoutMs: number;
  /** The drain stops when a queue stays empty this long. */
  readonly drainQuietMs: number;
  readonly drainTimeoutMs: number;
}

export const DEFAULT_WORKLOAD: Readonly<WorkloadOptions> = {
  queues: ["chaos-a", "chaos-b", "chaos-c"],
  producers: 3,
  consumersPerQueue: 2,
  keptOpenPerQueue: 1,
  ratePerProducer: 100,
  window: 32,
  prefetch: 16,
  flushTimeoutMs: 20_000,
  drainQuietMs: 1500,
  drainTimeoutMs: 60_000,
};

/** Calls keep retrying through elections and restarts; a fault lasts seconds. */
const CLIENT_OPTIONS = { callTimeoutMs: 5000, retryTimeoutMs: 60_000, discoveryTimeoutMs: 1000, keepaliveMs: 2000, backoffMaxMs: 500 };
const TICK_MS = 20;

export interface WorkloadStats {
  publishes: number;
  deliveries: number;
  consumerRestarts: number;
}

/** Where clients connect: every member, starting with a random one. */
export type Seeds = () => string[];

export class Workload implements ChaosWorkload {
  readonly #options: WorkloadOptions;
  readonly #recorder: HistoryRecorder;
  readonly #seeds: Seeds;
  readonly #rng: SeededRandom;
  #nextValue = 1;
  #stopping = false;
  #closingKept = false;
  readonly #producers: Promise<void>[] = [];
  /** Consumer tasks stop() ends, and the kept ones closeKept() ends. */
  readonly #closing: Promise<void>[] = [];
  readonly #kept: Promise<void>[] = [];
  /** Subscribed SDK consumers: the streams this workload holds open. */
  readonly #consumers = new Map<Consumer, { readonly queue: string; readonly kept: boolean }>();
  readonly stats: WorkloadStats = { publishes: 0, deliveries: 0, consumerRestarts: 0 };

  readonly #auth: () => object;

  /** `auth`: credentials and TLS of the cluster's clients (nothing for an insecure one). */
  constructor(options: WorkloadOptions, recorder: HistoryRecorder, seeds: Seeds, seed: number, auth: () => object = () => ({})) {
    this.#auth = auth;
    if (options.queues.length === 0 || options.producers < 1 || options.consumersPerQueue < 1) throw new RangeError("workload needs queues, producers and consumers");
    if (!(options.keptOpenPerQueue >= 0 && options.keptOpenPerQueue <= options.consumersPerQueue)) throw new RangeError(`keptOpenPerQueue must be 0..${options.consumersPerQueue}, got ${options.keptOpenPerQueue}`);
    if (options.window < 1 || options.window > 4096) throw new RangeError(`window must be 1..4096, got ${options.window}`);
    this.#options = options;
    this.#recorder = recorder;
    this.#seeds = seeds;
    this.#rng = new SeededRandom(seed);
  }

  get queues(): readonly string[] {
    return this.#options.queues;
  }

  /** Declares the queues (durable; published to through the default exchange). */
  async setup(): Promise<void> {
    const client = await connect(this.#seeds(), { ...CLIENT_OPTIONS, ...this.#auth() });
    try {
      for (const q of this.#options.queues) await client.declareQueue(q, { durable: true });
    } finally {
      client.close();
    }
  }

  start(): void {
    for (let i = 1; i <= this.#options.producers; i++) this.#producers.push(this.#produce(`p${i}`, this.#rng.int(0, 2 ** 31 - 1)));
    let n = 0;
    for (const queue of this.#options.queues) {
      for (let i = 0; i < this.#options.consumersPerQueue; i++) {
        const kept = i < this.#options.keptOpenPerQueue;
        (kept ? this.#kept : this.#closing).push(this.#consume(`c${++n}`, queue, kept));
      }
    }
  }

  /** Stops publishing, waits for outstanding confirms (up to flushTimeoutMs) and closes the consumers but the kept ones. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const [c, { kept }] of this.#consumers) if (!kept) void c.close();
    await Promise.all([...this.#producers, ...this.#closing]);
  }

  /** Closes the consumers stop() left attached. */
  async closeKept(): Promise<void> {
    this.#closingKept = true;
    for (const [c, { kept }] of this.#consumers) if (kept) void c.close();
    await Promise.all(this.#kept);
  }

  /** Subscribed consumers per queue: the streams the workload holds open right now. */
  openConsumers(): Map<string, number> {
    const open = new Map<string, number>();
    for (const { queue } of this.#consumers.values()) open.set(queue, (open.get(queue) ?? 0) + 1);
    return open;
  }

  /** Reads every queue until it stays empty; records each delivery with phase "drain". */
  async drain(): Promise<void> {
    await Promise.all(this.#options.queues.map((q) => this.#drainQueue(q)));
  }

  async #produce(process: string, seed: number): Promise<void> {
    const rng = new SeededRandom(seed);
    const client = await this.#connectRetrying();
    if (client === undefined) return;
    const publisher = client.createPublisher({ producerId: `chaos-${process}-${seed}`, window: this.#options.window });
    const outstanding = new Set<Promise<void>>();
    let budget = 0;
    let last = Date.now();
    try {
      while (!this.#stopping) {
        const now = Date.now();
        budget = Math.min(budget + ((now - last) * this.#options.ratePerProducer) / 1000, this.#options.window);
        last = now;
        while (budget >= 1 && outstanding.size < this.#options.window && !this.#stopping) {
          budget -= 1;
          const p = this.#publishOne(publisher, process, rng.pick(this.#options.queues));
          outstanding.add(p);
          void p.then(() => outstanding.delete(p));
        }
        await sleep(TICK_MS);
      }
      // The timer is cancelled once the confirms are in, so it does not hold the process open.
      const flushed = new AbortController();
      await Promise.race([
        Promise.all(outstanding),
        sleep(this.#options.flushTimeoutMs, undefined, { signal: flushed.signal }).catch(() => undefined),
      ]);
      flushed.abort();
    } finally {
      // What is still unconfirmed fails with ClosedError: recorded as unknown.
      client.close();
      await Promise.all(outstanding);
    }
  }

  async #publishOne(publisher: ReturnType<RaftmqClient["createPublisher"]>, process: string, queue: string): Promise<void> {
    const value = this.#nextValue++;
    this.stats.publishes += 1;
    const op = this.#recorder.invoke({ f: "publish", process, value, queue });
    try {
      await publisher.publish("", queue, String(value));
      op.ok();
    } catch (err) {
      // Only a broker's NACK says "not enqueued"; timeouts, lost streams and closing are unknown.
      if (err instanceof PublishNackError) op.fail({ error: err.reason });
      else op.info({ error: err instanceof ClosedError ? "closed" : errorText(err) });
    }
  }

  async #consume(process: string, queue: string, kept: boolean): Promise<void> {
    const done = () => (kept ? this.#closingKept : this.#stopping);
    while (!done()) {
      const client = await this.#connectRetrying(undefined, done);
      if (client === undefined) return;
      let consumer: Consumer | undefined;
      try {
        consumer = await client.consume(queue, { prefetch: this.#options.prefetch });
        this.#consumers.set(consumer, { queue, kept });
        if (done()) void consumer.close();
        for await (const d of consumer) this.#deliver(process, queue, d, undefined);
      } catch {
        // The SDK gave up resubscribing (a long fault): start over with a new client.
        this.stats.consumerRestarts += 1;
        await sleep(200);
      } finally {
        if (consumer !== undefined) this.#consumers.delete(consumer);
        client.close();
      }
    }
  }

  #deliver(process: string, queue: string, d: Delivery, phase: "drain" | undefined): void {
    const value = parseValue(d.text());
    this.stats.deliveries += 1;
    this.#recorder.record({
      f: "deliver",
      process,
      type: "ok",
      value,
      queue,
      redelivered: d.redelivered,
      deliveryTag: d.deliveryTag,
      ...(phase === undefined ? {} : { phase }),
    });
    const ack = this.#recorder.invoke({ f: "ack", process, value, queue, deliveryTag: d.deliveryTag });
    try {
      d.ack();
      // The SDK sends the ack without awaiting its commit: its outcome is unknown.
      ack.info();
    } catch (err) {
      ack.fail({ error: errorText(err) });
    }
  }

  async #drainQueue(queue: string): Promise<void> {
    const op = this.#recorder.invoke({ f: "drain", process: "drain", queue });
    const deadline = Date.now() + this.#options.drainTimeoutMs;
    let count = 0;
    const client = await this.#connectRetrying(deadline);
    if (client === undefined) {
      op.info({ error: "no node answered", value: 0 });
      return;
    }
    try {
      const consumer = await client.consume(queue, { prefetch: 256 });
      let pending: Promise<IteratorResult<Delivery>> | undefined;
      while (Date.now() < deadline) {
        pending ??= consumer.next();
        const got = await Promise.race([pending, sleep(this.#options.drainQuietMs).then(() => "quiet" as const)]);
        if (got === "quiet") {
          const info = await client.queueInfo(queue);
          if (info.messagesReady === 0 && info.messagesUnacked === 0) {
            op.ok({ value: count });
            await consumer.close();
            return;
          }
          continue;
        }
        pending = undefined;
        if (got.done === true) throw new Error("the drain's consumer ended");
        this.#deliver("drain", queue, got.value, "drain");
        count += 1;
      }
      op.info({ error: "timeout", value: count });
      await consumer.close();
    } catch (err) {
      if (!op.done) op.info({ error: errorText(err), value: count });
    } finally {
      client.close();
    }
  }

  /** Connects, retrying until `deadline` (ms since the epoch) or, without one, until `over` says so (default: stop()). */
  async #connectRetrying(deadline?: number, over = () => this.#stopping): Promise<RaftmqClient | undefined> {
    for (;;) {
      try {
        return await connect(this.#seeds(), { ...CLIENT_OPTIONS, ...this.#auth() });
      } catch {
        if (deadline === undefined ? over() : Date.now() > deadline) return undefined;
        await sleep(200);
      }
    }
  }
}

/** A body that is not a decimal integer is recorded as -1: a value nobody published. */
function parseValue(text: string): number {
  return /^\d+$/.test(text) ? Number(text) : -1;
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
