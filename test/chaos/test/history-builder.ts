// Writes crafted histories tersely: each call appends ops with the next timestamp (or the one given).

import type { FaultStart, FaultStop, Op, OpType } from "../src/history.ts";

export class HistoryBuilder {
  readonly ops: Op[] = [];
  #time = 0;
  #tags = new Map<string, number>();

  /** Moves the clock to t ms (ops after this get t, t+1, ...). */
  at(t: number): this {
    this.#time = t;
    return this;
  }

  #next(): number {
    const t = this.#time;
    this.#time += 1;
    return t;
  }

  invoke(process: string, value: number, queue = "q"): this {
    this.ops.push({ f: "publish", process, type: "invoke", value, queue, time: this.#next() });
    return this;
  }

  complete(process: string, value: number, type: Exclude<OpType, "invoke">, error?: string): this {
    this.ops.push({
      f: "publish",
      process,
      type,
      value,
      queue: "q",
      ...(error === undefined ? {} : { error }),
      time: this.#next(),
    });
    return this;
  }

  /** Invoke and complete in a row. */
  publish(process: string, value: number, type: Exclude<OpType, "invoke"> = "ok", queue = "q"): this {
    return this.invoke(process, value, queue).complete(process, value, type);
  }

  deliver(consumer: string, value: number, options: { queue?: string; redelivered?: boolean; drain?: boolean } = {}): this {
    const tag = (this.#tags.get(consumer) ?? 0) + 1;
    this.#tags.set(consumer, tag);
    this.ops.push({
      f: "deliver",
      process: consumer,
      type: "ok",
      value,
      queue: options.queue ?? "q",
      redelivered: options.redelivered ?? false,
      deliveryTag: tag,
      ...(options.drain === true ? { phase: "drain" as const } : {}),
      time: this.#next(),
    });
    return this;
  }

  ack(consumer: string, value: number, type: Exclude<OpType, "invoke"> = "ok"): this {
    this.ops.push({ f: "ack", process: consumer, type: "invoke", value, time: this.#next() });
    this.ops.push({ f: "ack", process: consumer, type, value, time: this.#next() });
    return this;
  }

  /** Deliver then ack. */
  consume(consumer: string, value: number, options: { queue?: string; redelivered?: boolean } = {}): this {
    return this.deliver(consumer, value, options).ack(consumer, value);
  }

  nemesis(f: FaultStart | FaultStop | "heal", value: string = f): this {
    this.ops.push({ f, process: "nemesis", type: "info", value, time: this.#next() });
    return this;
  }
}
