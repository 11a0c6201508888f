// A model of a correct at-least-once broker, driven by a list of actions, that writes the
// history a faultless harness would record: FIFO queues, enqueue before confirm, unacked
// messages back at the head (marked redelivered) when their consumer dies, and a final drain.

import type { FaultStart, Op } from "../src/history.ts";
import { FAULT_KINDS } from "../src/history.ts";

export type PublishOutcome = "ok" | "fail" | "info-enqueued" | "info-dropped" | "timeout-enqueued" | "timeout-dropped";

export type Action =
  | { readonly kind: "invoke"; readonly producer: number; readonly queue: number }
  | { readonly kind: "complete"; readonly producer: number; readonly outcome: PublishOutcome }
  | { readonly kind: "deliver"; readonly queue: number; readonly consumer: number }
  | { readonly kind: "ack"; readonly consumer: number }
  | { readonly kind: "crash"; readonly consumer: number }
  | { readonly kind: "fault"; readonly fault: FaultStart };

interface Message {
  readonly value: number;
  readonly queue: string;
  redelivered: boolean;
}

export interface ModelSize {
  readonly producers: number;
  readonly consumers: number;
  readonly queues: number;
}

export function cleanHistory(actions: Iterable<Action>, size: ModelSize, stepMs = 3): Op[] {
  const ops: Op[] = [];
  let time = 0;
  let nextValue = 1;
  const queues = Array.from({ length: size.queues }, () => [] as Message[]);
  const inFlight = new Map<number, { value: number; queue: number }>();
  const unacked = Array.from({ length: size.consumers }, () => [] as Message[]);
  const tags = new Map<string, number>();
  const openFaults = new Set<FaultStart>();
  const tick = (): number => {
    time += stepMs;
    return time;
  };
  const deliver = (q: number, consumer: string, drain: boolean): Message | undefined => {
    const m = queues[q]?.shift();
    if (m === undefined) return undefined;
    const tag = (tags.get(consumer) ?? 0) + 1;
    tags.set(consumer, tag);
    ops.push({
      f: "deliver",
      process: consumer,
      type: "ok",
      value: m.value,
      queue: m.queue,
      redelivered: m.redelivered,
      deliveryTag: tag,
      ...(drain ? { phase: "drain" as const } : {}),
      time: tick(),
    });
    return m;
  };
  const ack = (consumer: string, value: number): void => {
    ops.push({ f: "ack", process: consumer, type: "invoke", value, time: tick() });
    ops.push({ f: "ack", process: consumer, type: "ok", value, time: tick() });
  };
  const crash = (c: number): void => {
    const held = unacked[c] ?? [];
    // Back to the head of each queue in the order they were first taken.
    for (let i = held.length - 1; i >= 0; i--) {
      const m = held[i] as Message;
      m.redelivered = true;
      queues[Number(m.queue.slice(1))]?.unshift(m);
    }
    unacked[c] = [];
  };

  for (const a of actions) {
    switch (a.kind) {
      case "invoke": {
        if (inFlight.has(a.producer)) break;
        const value = nextValue++;
        inFlight.set(a.producer, { value, queue: a.queue });
        ops.push({ f: "publish", process: `p${a.producer}`, type: "invoke", value, queue: `q${a.queue}`, time: tick() });
        break;
      }
      case "complete": {
        const p = inFlight.get(a.producer);
        if (p === undefined) break;
        inFlight.delete(a.producer);
        const queue = `q${p.queue}`;
        if (a.outcome === "ok" || a.outcome === "info-enqueued" || a.outcome === "timeout-enqueued") {
          queues[p.queue]?.push({ value: p.value, queue, redelivered: false });
        }
        const base = { f: "publish" as const, process: `p${a.producer}`, value: p.value, queue, time: tick() };
        switch (a.outcome) {
          case "ok":
            ops.push({ ...base, type: "ok" });
            break;
          case "fail":
            ops.push({ ...base, type: "fail", error: "rejected" });
            break;
          case "info-enqueued":
          case "info-dropped":
            ops.push({ ...base, type: "info" });
            break;
          case "timeout-enqueued":
          case "timeout-dropped":
            ops.push({ ...base, type: "fail", error: "timeout" });
            break;
        }
        break;
      }
      case "deliver": {
        const m = deliver(a.queue, `c${a.consumer}`, false);
        if (m !== undefined) unacked[a.consumer]?.push(m);
        break;
      }
      case "ack": {
        const m = unacked[a.consumer]?.shift();
        if (m !== undefined) ack(`c${a.consumer}`, m.value);
        break;
      }
      case "crash":
        crash(a.consumer);
        break;
      case "fault": {
        const open = openFaults.has(a.fault);
        ops.push({
          f: open ? FAULT_KINDS[a.fault] : a.fault,
          process: "nemesis",
          type: "info",
          value: `${open ? "end" : "begin"} ${a.fault}`,
          time: tick(),
        });
        if (open) openFaults.delete(a.fault);
        else openFaults.add(a.fault);
        break;
      }
    }
  }

  // End of run: publishes still in flight stay without outcome; heal; consumers stop; drain.
  if (openFaults.size > 0) ops.push({ f: "heal", process: "nemesis", type: "info", value: "heal all", time: tick() });
  for (let c = 0; c < size.consumers; c++) crash(c);
  for (let q = 0; q < size.queues; q++) {
    ops.push({ f: "drain", process: "drain", type: "invoke", queue: `q${q}`, time: tick() });
    let n = 0;
    for (let m = deliver(q, "drain", true); m !== undefined; m = deliver(q, "drain", true)) {
      ack("drain", m.value);
      n += 1;
    }
    ops.push({ f: "drain", process: "drain", type: "ok", queue: `q${q}`, value: n, time: tick() });
  }
  return ops;
}
