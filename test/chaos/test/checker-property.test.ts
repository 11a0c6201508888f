import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { check } from "../src/checker.ts";
import { FAULT_KINDS, type FaultStart, type Op } from "../src/history.ts";
import { type Action, cleanHistory, type ModelSize } from "./clean-history.ts";

const SIZE: ModelSize = { producers: 3, consumers: 3, queues: 2 };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("invoke" as const), producer: fc.nat(SIZE.producers - 1), queue: fc.nat(SIZE.queues - 1) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("complete" as const),
      producer: fc.nat(SIZE.producers - 1),
      outcome: fc.constantFrom("ok", "ok", "ok", "fail", "info-enqueued", "info-dropped", "timeout-enqueued", "timeout-dropped"),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("deliver" as const), queue: fc.nat(SIZE.queues - 1), consumer: fc.nat(SIZE.consumers - 1) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("ack" as const), consumer: fc.nat(SIZE.consumers - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("crash" as const), consumer: fc.nat(SIZE.consumers - 1) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("fault" as const), fault: fc.constantFrom(...(Object.keys(FAULT_KINDS) as FaultStart[])) }),
  },
);

const history = fc.array(action, { maxLength: 300, size: "max" }).map((actions) => cleanHistory(actions, SIZE));

function confirmedValues(ops: readonly Op[]): number[] {
  return ops.flatMap((op) => (op.f === "publish" && op.type === "ok" ? [op.value] : []));
}

describe("checker properties", () => {
  it("every history of a correct broker is valid, in both order scopes", () => {
    fc.assert(
      fc.property(history, (ops) => {
        for (const orderScope of ["queue", "consumer"] as const) {
          const r = check(ops, { orderScope });
          expect(r.lost).toEqual([]);
          expect(r.unexpected).toEqual([]);
          expect(r.orderViolationCount).toBe(0);
          expect(r.duplicateCounts.notRedelivered).toBe(0);
          expect(r.valid).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("removing the ack of a confirmed value makes exactly that value lost", () => {
    const withConfirmed = history.filter((ops) => confirmedValues(ops).length > 0);
    fc.assert(
      fc.property(withConfirmed, fc.nat(), (ops, pick) => {
        const confirmed = confirmedValues(ops);
        const victim = confirmed[pick % confirmed.length] as number;
        const r = check(ops.filter((op) => !(op.f === "ack" && op.value === victim)));
        expect(r.lost).toEqual([victim]);
        expect(r.valid).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it("removing the only delivery of a confirmed value makes exactly that value lost", () => {
    const deliveredOnce = (ops: readonly Op[]): number[] => {
      const counts = new Map<number, number>();
      for (const op of ops) if (op.f === "deliver") counts.set(op.value, (counts.get(op.value) ?? 0) + 1);
      return confirmedValues(ops).filter((v) => counts.get(v) === 1);
    };
    fc.assert(
      fc.property(
        history.filter((ops) => deliveredOnce(ops).length > 0),
        fc.nat(),
        (ops, pick) => {
          const candidates = deliveredOnce(ops);
          const victim = candidates[pick % candidates.length] as number;
          const r = check(ops.filter((op) => !(op.f === "deliver" && op.value === victim)));
          expect(r.lost).toEqual([victim]);
          expect(r.valid).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a correct broker's histories do exercise redeliveries, recoveries and faults", () => {
    // Guards the generator: the properties above mean little if these never occur.
    const seen = { redelivered: 0, recovered: 0, faults: 0, failed: 0 };
    fc.assert(
      fc.property(history, (ops) => {
        const r = check(ops);
        seen.redelivered += r.duplicateCounts.redelivered;
        seen.recovered += r.recovered.length;
        seen.faults += r.faults.length;
        seen.failed += r.publishes.failed;
      }),
      { numRuns: 100, seed: 7 },
    );
    expect(seen.redelivered).toBeGreaterThan(0);
    expect(seen.recovered).toBeGreaterThan(0);
    expect(seen.faults).toBeGreaterThan(0);
    expect(seen.failed).toBeGreaterThan(0);
  });
});
