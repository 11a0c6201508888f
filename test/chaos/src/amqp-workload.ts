// The chaos workload over AMQP 0-9-1, through amqplib as a RabbitMQ application uses it:
// publishers on confirm channels, consumers with manual acks and a prefetch, each on a connection
// of its own to a random node. A connection or channel that fails (or a confirm that never comes)
// is given up; the client opens a new one after a short backoff, at a node drawn anew. Every step
// goes to the history in the gRPC workload's format, so the same checker reads it.
//
// A publish's outcome is its confirm: basic.ack is ok; basic.nack and a connection or channel that
// closed first are unknown (info, with error "nack" or "closed"): raftmq nacks what a leader change
// left unconfirmed, which may have been enqueued. AMQP has no idempotent producer: duplicates are
// at-least-once, and every confirmed message must be consumed.

import { setTimeout as sleep } from "node:timers/promises";
import type { Channel, ConsumeMessage } from "amqplib";
import { AmqpLink } from "./amqp-link.ts";
import type { ChaosWorkload } from "./chaos-workload.ts";
import type { HistoryRecorder, PendingOp } from "./history-recorder.ts";
import { SeededRandom } from "./seeded-random.ts";

export interface AmqpWorkloadOptions {
  readonly queues: readonly string[];
  /** Publishing connections, one confirm channel each. */
  readonly publishers: number;
  /** Consuming connections, one channel and consumer each, spread over the queues. */
  readonly consumers: number;
  /** Of those, how many stay attached through stop() and the drain, until closeKept(). */
  readonly keptOpen: number;
  /** Publishes per second per publisher. */
  readonly ratePerPublisher: number;
  /** Publishes a channel has awaiting confirms at most. */
  readonly window: number;
  readonly prefetch: number;
  /** A publish unconfirmed this long makes its publisher give the connection up and reconnect. */
  readonly confirmTimeoutMs: number;
  /** The heartbeat the clients ask for: a dead or frozen node is noticed within about two of them. */
  readonly heartbeatSeconds: number;
  /** Connect and handshake; also the bound on each channel call (open, qos, consume, declare). */
  readonly callTimeoutMs: number;
  /** A client waits between these before it reconnects. */
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /** How long the end of the run waits for outstanding confirms before giving them up as unknown. */
  readonly flushTimeoutMs: number;
  /** The drain stops when a queue stays empty this long. */
  readonly drainQuietMs: number;
  readonly drainTimeoutMs: number;
}

export const DEFAULT_AMQP_WORKLOAD: Readonly<AmqpWorkloadOptions> = {
  queues: ["chaos-amqp"],
  publishers: 3,
  consumers: 3,
  keptOpen: 1,
  ratePerPublisher: 100,
  window: 64,
  prefetch: 50,
  confirmTimeoutMs: 10_000,
  heartbeatSeconds: 2,
  callTimeoutMs: 5000,
  backoffMinMs: 100,
  backoffMaxMs: 1000,
  flushTimeoutMs: 20_000,
  drainQuietMs: 1500,
  drainTimeoutMs: 60_000,
};

export interface AmqpWorkloadStats {
  /** Publishes sent. */
  publishes: number;
  /** basic.ack */
  confirmed: number;
  /** basic.nack */
  nacked: number;
  /** The channel or connection closed before the confirm (or the publish could not be sent). */
  unknown: number;
  deliveries: number;
  /** Connections opened, and connections given up (failed, closed by the node, timed out) and opened again. */
  connections: number;
  reconnects: number;
}

/** What the drain asks the cluster about a queue (a linearizable read, not an AMQP call). */
export type QueueState = (queue: string) => Promise<{ readonly ready: number; readonly unacked: number }>;

const TICK_MS = 20;
/** amqplib's error for a basic.nack; a closed channel calls back with another. */
const NACKED = "message nacked";
const SETUP_TIMEOUT_MS = 30_000;

export class AmqpWorkload implements ChaosWorkload {
  readonly #options: AmqpWorkloadOptions;
  readonly #recorder: HistoryRecorder;
  readonly #urls: () => readonly string[];
  readonly #queueState: QueueState;
  readonly #rng: SeededRandom;
  #nextValue = 1;
  #stopping = false;
  #closingKept = false;
  readonly #stopped = signal();
  readonly #keptClosed = signal();
  readonly #publishers: Promise<void>[] = [];
  readonly #closing: Promise<void>[] = [];
  readonly #kept: Promise<void>[] = [];
  /** Consumers the broker has confirmed (consume-ok) on a connection still open. */
  readonly #subscribed = new Set<{ readonly queue: string }>();
  readonly stats: AmqpWorkloadStats = { publishes: 0, confirmed: 0, nacked: 0, unknown: 0, deliveries: 0, connections: 0, reconnects: 0 };

  /** `urls`: every member's AMQP URL, asked anew at each connect (the workload adds the heartbeat). */
  constructor(options: AmqpWorkloadOptions, recorder: HistoryRecorder, urls: () => readonly string[], queueState: QueueState, seed: number) {
    if (options.queues.length === 0 || options.publishers < 1 || options.consumers < 1) throw new RangeError("the AMQP workload needs queues, publishers and consumers");
    if (!(options.keptOpen >= 0 && options.keptOpen <= options.consumers)) throw new RangeError(`keptOpen must be 0..${options.consumers}, got ${options.keptOpen}`);
    if (!(Number.isInteger(options.window) && options.window >= 1 && options.window <= 4096)) throw new RangeError(`window must be 1..4096, got ${options.window}`);
    // AMQP's prefetch_count is a short; 0 would mean no limit, which a chaos client must not have.
    if (!(Number.isInteger(options.prefetch) && options.prefetch >= 1 && options.prefetch <= 65_535)) throw new RangeError(`prefetch must be 1..65535, got ${options.prefetch}`);
    if (!(options.heartbeatSeconds >= 1 && options.backoffMinMs <= options.backoffMaxMs)) throw new RangeError("heartbeat must be >= 1 s and the backoff range not empty");
    this.#options = options;
    this.#recorder = recorder;
    this.#urls = urls;
    this.#queueState = queueState;
    this.#rng = new SeededRandom(seed);
  }

  get queues(): readonly string[] {
    return this.#options.queues;
  }

  /** Declares the queues durable, through the AMQP port of a random node. */
  async setup(): Promise<void> {
    const rng = this.#fork();
    const deadline = Date.now() + SETUP_TIMEOUT_MS;
    let last: unknown;
    while (Date.now() < deadline) {
      const link = await this.#connect(rng, () => Date.now() > deadline);
      if (link === undefined) break;
      try {
        const ch = await link.within(link.model.createChannel(), this.#options.callTimeoutMs, "channel.open");
        ch.on("error", () => {});
        for (const q of this.#options.queues) await link.within(ch.assertQueue(q, { durable: true }), this.#options.callTimeoutMs, `queue.declare ${q}`);
        return;
      } catch (err) {
        last = err;
        await this.#backoff(rng);
      } finally {
        await link.close();
      }
    }
    throw new Error(`could not declare ${this.#options.queues.join(", ")} over AMQP within ${SETUP_TIMEOUT_MS} ms${last === undefined ? "" : `: ${errorText(last)}`}`);
  }

  start(): void {
    for (let i = 1; i <= this.#options.publishers; i++) this.#publishers.push(this.#publisher(`p${i}`, this.#fork()));
    for (let i = 0; i < this.#options.consumers; i++) {
      const kept = i < this.#options.keptOpen;
      const queue = this.#options.queues[i % this.#options.queues.length] as string;
      (kept ? this.#kept : this.#closing).push(this.#consumer(`c${i + 1}`, queue, kept, this.#fork()));
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#stopped.fire();
    await Promise.all([...this.#publishers, ...this.#closing]);
  }

  async closeKept(): Promise<void> {
    this.#closingKept = true;
    this.#keptClosed.fire();
    await Promise.all(this.#kept);
  }

  openConsumers(): Map<string, number> {
    const open = new Map<string, number>();
    for (const { queue } of this.#subscribed) open.set(queue, (open.get(queue) ?? 0) + 1);
    return open;
  }

  async drain(): Promise<void> {
    await Promise.all(this.#options.queues.map((q) => this.#drainQueue(q, this.#fork())));
  }

  /** One publisher: a connection at a time, publishing until stop() or until the connection fails. */
  async #publisher(process: string, rng: SeededRandom): Promise<void> {
    while (!this.#stopping) {
      const link = await this.#connect(rng, () => this.#stopping);
      if (link === undefined) return;
      let failed: string | undefined;
      const outstanding = new Map<number, { readonly op: PendingOp; readonly sentAt: number }>();
      try {
        failed = await this.#publishOn(process, link, rng, outstanding);
      } catch (err) {
        failed = errorText(err);
      } finally {
        await link.close();
        // amqplib has called back every publish of a closed channel; this is only a backstop.
        for (const { op } of outstanding.values()) this.#unknown(op, "closed");
      }
      if (failed !== undefined && !this.#stopping) await this.#reconnectAfter(rng);
    }
  }

  /** Publishes on `link` until stop() (then waits for the confirms) or a failure, which it returns. */
  async #publishOn(process: string, link: AmqpLink, rng: SeededRandom, outstanding: Map<number, { readonly op: PendingOp; readonly sentAt: number }>): Promise<string | undefined> {
    const o = this.#options;
    const ch = await link.within(link.model.createConfirmChannel(), o.callTimeoutMs, "channel.open");
    let failed: string | undefined;
    ch.on("error", () => {});
    ch.on("close", () => {
      failed ??= "channel closed";
    });
    void link.ended.then(() => {
      failed ??= "connection closed";
    });
    let budget = 0;
    let last = Date.now();
    while (!this.#stopping && failed === undefined) {
      const now = Date.now();
      budget = Math.min(budget + ((now - last) * o.ratePerPublisher) / 1000, o.window);
      last = now;
      while (budget >= 1 && outstanding.size < o.window && !this.#stopping && failed === undefined) {
        budget -= 1;
        const value = this.#nextValue++;
        const queue = rng.pick(o.queues);
        const op = this.#recorder.invoke({ f: "publish", process, value, queue });
        this.stats.publishes += 1;
        outstanding.set(value, { op, sentAt: now });
        try {
          ch.publish("", queue, Buffer.from(String(value)), { persistent: true }, (err: unknown) => {
            outstanding.delete(value);
            if (op.done) return;
            if (err === null || err === undefined) {
              op.ok();
              this.stats.confirmed += 1;
            } else if (err instanceof Error && err.message === NACKED) {
              op.info({ error: "nack" });
              this.stats.nacked += 1;
            } else {
              this.#unknown(op, "closed");
            }
          });
        } catch (err) {
          // amqplib refuses to send on a channel it knows closed.
          outstanding.delete(value);
          this.#unknown(op, errorText(err));
          failed ??= errorText(err);
        }
      }
      const oldest = outstanding.values().next().value;
      if (oldest !== undefined && now - oldest.sentAt > o.confirmTimeoutMs) failed ??= `no confirm within ${o.confirmTimeoutMs} ms`;
      await sleep(TICK_MS);
    }
    const deadline = Date.now() + o.flushTimeoutMs;
    while (failed === undefined && outstanding.size > 0 && Date.now() < deadline) await sleep(TICK_MS);
    return failed;
  }

  #unknown(op: PendingOp, error: string): void {
    if (op.done) return;
    op.info({ error });
    this.stats.unknown += 1;
  }

  /** One consumer: a connection at a time, consuming until it is told to stop or the connection fails. */
  async #consumer(process: string, queue: string, kept: boolean, rng: SeededRandom): Promise<void> {
    const done = () => (kept ? this.#closingKept : this.#stopping);
    const told = kept ? this.#keptClosed.fired : this.#stopped.fired;
    while (!done()) {
      const link = await this.#connect(rng, done);
      if (link === undefined) return;
      const registration = { queue };
      try {
        const o = this.#options;
        const ch = await link.within(link.model.createChannel(), o.callTimeoutMs, "channel.open");
        ch.on("error", () => {});
        const channelClosed = new Promise<void>((resolve) => ch.once("close", () => resolve()));
        await link.within(ch.prefetch(o.prefetch), o.callTimeoutMs, "basic.qos");
        let cancel: () => void = () => {};
        const cancelled = new Promise<void>((resolve) => {
          cancel = resolve;
        });
        const consuming = ch.consume(
          queue,
          (m) => {
            // null: the broker cancelled the consumer (its queue went away); start over.
            if (m === null) cancel();
            else this.#deliver(process, queue, ch, m, undefined);
          },
          { noAck: false },
        );
        await link.within(consuming, o.callTimeoutMs, "basic.consume");
        this.#subscribed.add(registration);
        await Promise.race([link.ended, channelClosed, cancelled, told]);
      } catch {
        // Given up below: a new connection, maybe at another node.
      } finally {
        this.#subscribed.delete(registration);
        await link.close();
      }
      if (!done()) await this.#reconnectAfter(rng);
    }
  }

  #deliver(process: string, queue: string, ch: Channel, m: ConsumeMessage, phase: "drain" | undefined): void {
    const value = parseValue(m.content.toString("utf8"));
    const { redelivered, deliveryTag } = m.fields;
    this.stats.deliveries += 1;
    this.#recorder.record({ f: "deliver", process, type: "ok", value, queue, redelivered, deliveryTag, ...(phase === undefined ? {} : { phase }) });
    const ack = this.#recorder.invoke({ f: "ack", process, value, queue, deliveryTag });
    try {
      ch.ack(m);
      // basic.ack has no reply: its outcome is unknown. If it is lost, the message comes back.
      ack.info();
    } catch (err) {
      ack.fail({ error: errorText(err) });
    }
  }

  /** Consumes `queue` until the cluster reports it empty with nothing unacked, reconnecting as the consumers do. */
  async #drainQueue(queue: string, rng: SeededRandom): Promise<void> {
    const o = this.#options;
    const op = this.#recorder.invoke({ f: "drain", process: "drain", queue });
    const deadline = Date.now() + o.drainTimeoutMs;
    const over = () => Date.now() > deadline;
    let count = 0;
    let error = "timeout";
    while (!over()) {
      const link = await this.#connect(rng, over);
      if (link === undefined) break;
      try {
        const ch = await link.within(link.model.createChannel(), o.callTimeoutMs, "channel.open");
        ch.on("error", () => {});
        await link.within(ch.prefetch(256), o.callTimeoutMs, "basic.qos");
        let lastDelivery = Date.now();
        const consuming = ch.consume(
          queue,
          (m) => {
            if (m === null) return;
            lastDelivery = Date.now();
            count += 1;
            this.#deliver("drain", queue, ch, m, "drain");
          },
          { noAck: false },
        );
        await link.within(consuming, o.callTimeoutMs, "basic.consume");
        while (link.open && !over()) {
          await sleep(100);
          if (Date.now() - lastDelivery < o.drainQuietMs) continue;
          const state = await this.#queueState(queue).catch(() => undefined);
          if (state !== undefined && state.ready === 0 && state.unacked === 0) {
            op.ok({ value: count });
            return;
          }
          // Not empty yet (an ack on its way, a gone consumer's messages not back yet): another quiet spell.
          lastDelivery = Date.now();
        }
      } catch (err) {
        error = errorText(err);
      } finally {
        await link.close();
      }
      if (!over()) await this.#backoff(rng);
    }
    op.info({ error, value: count });
  }

  /** A connection to a node drawn from the members, retried after a backoff until `over` says so. */
  async #connect(rng: SeededRandom, over: () => boolean): Promise<AmqpLink | undefined> {
    for (;;) {
      if (over()) return undefined;
      const url = rng.pick(this.#urls());
      try {
        const link = await AmqpLink.open(withHeartbeat(url, this.#options.heartbeatSeconds), this.#options.callTimeoutMs);
        this.stats.connections += 1;
        return link;
      } catch {
        // Down, frozen or refusing: another node after the backoff.
        await this.#backoff(rng);
      }
    }
  }

  async #reconnectAfter(rng: SeededRandom): Promise<void> {
    this.stats.reconnects += 1;
    await this.#backoff(rng);
  }

  async #backoff(rng: SeededRandom): Promise<void> {
    await sleep(rng.int(this.#options.backoffMinMs, this.#options.backoffMaxMs));
  }

  /** A generator of its own for each client, so one client's draws do not shift another's. */
  #fork(): SeededRandom {
    return new SeededRandom(this.#rng.int(0, 2 ** 31 - 1));
  }
}

function withHeartbeat(url: string, seconds: number): string {
  const u = new URL(url);
  u.searchParams.set("heartbeat", String(seconds));
  return u.toString();
}

/** A promise that resolves once fire() is called. */
function signal(): { readonly fired: Promise<void>; fire(): void } {
  let fire: () => void = () => {};
  const fired = new Promise<void>((resolve) => {
    fire = resolve;
  });
  return { fired, fire: () => fire() };
}

/** A body that is not a decimal integer is recorded as -1: a value nobody published. */
function parseValue(text: string): number {
  return /^\d+$/.test(text) ? Number(text) : -1;
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
