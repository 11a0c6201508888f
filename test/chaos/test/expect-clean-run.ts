// What every real chaos run in the tests must show: confirms happened, and nothing confirmed was
// lost, nothing unexpected or failed-but-delivered turned up, no duplicate went unmarked (where
// producers are idempotent; AMQP's at-least-once allows any), no node crashed, every queue listed
// exactly the consumers still open (and then none), and the run says it is valid.
import { expect } from "vitest";
import { describeLiveness } from "../src/consumer-liveness.ts";
import type { ChaosRunResult } from "../src/run-chaos.ts";

export function expectCleanRun(run: ChaosRunResult): void {
  expect(run.check.publishes.confirmed).toBeGreaterThan(0);
  expect(run.check.lost).toEqual([]);
  expect(run.check.unexpected).toEqual([]);
  expect(run.check.failedDelivered).toEqual([]);
  if (run.check.duplicatePolicy === "redelivered") expect(run.check.duplicateCounts.notRedelivered).toBe(0);
  expect(run.crashes).toEqual([]);
  expect(run.liveness.map((l) => l.phase)).toEqual(["open", "closed"]);
  expect(describeLiveness(run.liveness)).toMatch(/^consumers exact/);
  expect(run.valid).toBe(true);
}
