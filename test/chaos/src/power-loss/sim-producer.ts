// A simulated producer: publishes unique integers to random queues with confirms, keeping at most
// `window` awaiting them, and retries an unconfirmed publish with the same producer id and
// sequence (the broker answers a retry of an applied publish with the original confirm), as the
// SDK's publisher does. A confirm is recorded only when the node's apply answers it.
import { CommandBuilder } from "@raftmq/server/replicated-core";
import type { PendingOp } from "../history-recorder.ts";
import type { SeededRandom } from "../seeded-random.ts";
import type { SimHistory } from "./sim-history.ts";
import { publishVerdict, type SimNode } from "./sim-node.ts";

export interface ProducerOptions {
  readonly queues: readonly string[];
  readonly window: number;
  /** Simulated ms between publishes, drawn per publish from [min, max]. */
  readonly intervalMs: readonly [number, number];
  /** An attempt not answered within this long is retried. */
  readonly callTimeoutMs: number;
  /** Wait before retrying after a failed attempt or when no leader is known. */
  readonly backoffMs: number;
  /** A publish not confirmed within this long is given up as unknown. */
  readonly retryTimeoutMs: number;
}

/** The cluster as a client sees it. */
export interface ClientView {
  now(): number;
  /** Powered nodes that believe they lead, in id order (a stale leader among them). */
  leaders(): SimNode[];
}

interface Outstanding {
  readonly value: number;
  readonly queue: string;
  readonly sequence: number;
  readonly op: PendingOp;
  readonly invokedAt: number;
  attempt: number;
  inflight: boolean;
  retryAt: number;
  callDeadline: number;
}

const builder = new CommandBuilder();
const encoder = new TextEncoder();

export class SimProducer {
  readonly #outstanding = new Map<number, Outstanding>();
  #sequence = 0;
  #nextPublishAt = 0;
  confirmed = 0;
  retries = 0;

  constructor(
    readonly process: string,
    private readonly producerId: string,
    private readonly options: ProducerOptions,
    private readonly rng: SeededRandom,
    private readonly history: SimHistory,
    private readonly cluster: ClientView,
    private readonly nextValue: () => number,
  ) {
    if (!(options.window >= 1 && options.window <= 4096)) throw new RangeError(`window must be 1..4096, got ${options.window}`);
  }

  get outstanding(): number {
    return this.#outstanding.size;
  }

  /** One simulated millisecond: publish when due, retry what needs it, give up what is too old. */
  step(publishing: boolean): void {
    const now = this.cluster.now();
    if (publishing && now >= this.#nextPublishAt && this.#outstanding.size < this.options.window) {
      const [lo, hi] = this.options.intervalMs;
      this.#nextPublishAt = now + this.rng.int(lo, hi);
      const value = this.nextValue();
      const queue = this.rng.pick(this.options.queues);
      const op = this.history.invoke({ f: "publish", process: this.process, value, queue });
      this.#outstanding.set(value, { value, queue, sequence: ++this.#sequence, op, invokedAt: now, attempt: 0, inflight: false, retryAt: now, callDeadline: 0 });
    }
    for (const o of [...this.#outstanding.values()]) {
      if (now - o.invokedAt > this.options.retryTimeoutMs) {
        this.#complete(o, "info", "timeout");
        continue;
      }
      if (o.inflight && now >= o.callDeadline) {
        // The answer may still come; a later attempt's answer wins and this one's is ignored.
        o.inflight = false;
        o.retryAt = now;
      }
      if (!o.inflight && now >= o.retryAt) this.#attempt(o, now);
    }
  }

  /** The end of the run: what is still unconfirmed has an unknown outcome. */
  close(): void {
    for (const o of [...this.#outstanding.values()]) this.#complete(o, "info", "closed");
  }

  #attempt(o: Outstanding, now: number): void {
    const leaders = this.cluster.leaders();
    if (leaders.length === 0) {
      o.retryAt = now + this.options.backoffMs;
      return;
    }
    const node = this.rng.pick(leaders);
    if (o.attempt > 0) this.retries++;
    const attempt = ++o.attempt;
    o.inflight = true;
    o.callDeadline = now + this.options.callTimeoutMs;
    const command = builder.publish({
      messages: [{ exchange: "", routingKey: o.queue, body: encoder.encode(String(o.value)), producerId: this.producerId, sequence: o.sequence }],
    });
    try {
      node.submit(command, (_i, outcome) => {
        if (o.attempt !== attempt || !this.#outstanding.has(o.value)) return;
        const verdict = publishVerdict(outcome);
        switch (verdict.kind) {
          case "ok":
            this.#complete(o, "ok", undefined);
            return;
          case "nack":
            this.#complete(o, "fail", verdict.reason);
            return;
          case "unknown":
            o.inflight = false;
            o.retryAt = this.cluster.now() + this.options.backoffMs;
            return;
          default: {
            const never: never = verdict;
            throw new Error(`unknown verdict ${JSON.stringify(never)}`);
          }
        }
      });
    } catch {
      // Not the leader any more, off, or overloaded: try again shortly, wherever the leader is.
      if (o.attempt === attempt) {
        o.inflight = false;
        o.retryAt = now + this.options.backoffMs;
      }
    }
  }

  #complete(o: Outstanding, type: "ok" | "fail" | "info", error: string | undefined): void {
    this.#outstanding.delete(o.value);
    if (type === "ok") {
      this.confirmed++;
      o.op.ok();
    } else if (type === "fail") {
      o.op.fail(error === undefined ? undefined : { error });
    } else {
      o.op.info(error === undefined ? undefined : { error });
    }
  }
}
