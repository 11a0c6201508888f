import { describe, expect, it } from "vitest";
import { check } from "../src/checker.ts";
import { MalformedHistoryError } from "../src/history-errors.ts";
import { TIMEOUT_ERROR } from "../src/history.ts";
import { HistoryBuilder } from "./history-builder.ts";

/** Three confirmed values from one producer, consumed in order and acked. */
function cleanRun(): HistoryBuilder {
  return new HistoryBuilder().publish("p1", 1).publish("p1", 2).publish("p1", 3).consume("c1", 1).consume("c1", 2).consume("c1", 3);
}

describe("checker: total queue", () => {
  it("a clean run is valid and counts what happened", () => {
    const r = check(cleanRun().ops);
    expect(r).toMatchObject({
      valid: true,
      ops: 15,
      publishes: { attempted: 3, confirmed: 3, failed: 0, unknown: 0 },
      deliveries: 3,
      lost: [],
      unexpected: [],
      duplicated: [],
      recovered: [],
      orderViolationCount: 0,
      availability: 1,
    });
  });

  it("a confirmed value never delivered is lost", () => {
    const h = new HistoryBuilder().publish("p1", 1).publish("p1", 2).consume("c1", 1);
    const r = check(h.ops);
    expect(r.valid).toBe(false);
    expect(r.lost).toEqual([2]);
  });

  it("a confirmed value delivered but never acked is lost; an ack of unknown outcome counts as acked", () => {
    const h = new HistoryBuilder().publish("p1", 1).publish("p1", 2).deliver("c1", 1).deliver("c1", 2).ack("c1", 2, "info");
    const r = check(h.ops);
    expect(r.lost).toEqual([1]);
    expect(r.valid).toBe(false);
  });

  it("a definitely failed ack does not count: the value must come back and be acked", () => {
    const h = new HistoryBuilder().publish("p1", 1).deliver("c1", 1).ack("c1", 1, "fail");
    expect(check(h.ops).lost).toEqual([1]);
    h.deliver("drain", 1, { redelivered: true, drain: true }).ack("drain", 1);
    const r = check(h.ops);
    expect(r.lost).toEqual([]);
    expect(r.valid).toBe(true);
  });

  it("a duplicate not marked redelivered is counted and invalid", () => {
    const h = cleanRun().deliver("c2", 2, { redelivered: false });
    const r = check(h.ops);
    expect(r.valid).toBe(false);
    expect(r.duplicated).toEqual([{ value: 2, count: 2, allRedelivered: false }]);
    expect(r.duplicateCounts).toEqual({ redelivered: 0, notRedelivered: 1 });
  });

  it("a duplicate whose every later delivery is marked redelivered is counted and allowed", () => {
    const h = new HistoryBuilder()
      .publish("p1", 1)
      .deliver("c1", 1)
      .nemesis("kill", "kill n1")
      .deliver("c2", 1, { redelivered: true })
      .deliver("c3", 1, { redelivered: true })
      .ack("c3", 1)
      .nemesis("restart", "restart n1");
    const r = check(h.ops);
    expect(r.valid).toBe(true);
    expect(r.duplicated).toEqual([{ value: 1, count: 3, allRedelivered: true }]);
    expect(r.duplicateCounts).toEqual({ redelivered: 1, notRedelivered: 0 });
  });

  it("one unmarked delivery among redeliveries makes the duplicate invalid", () => {
    const h = new HistoryBuilder()
      .publish("p1", 1)
      .deliver("c1", 1)
      .deliver("c2", 1, { redelivered: true })
      .deliver("c3", 1, { redelivered: false })
      .ack("c3", 1);
    const r = check(h.ops);
    expect(r.valid).toBe(false);
    expect(r.duplicated).toEqual([{ value: 1, count: 3, allRedelivered: false }]);
  });


  it('with duplicates "any" (AMQP: no idempotent producer) an unmarked duplicate is counted but valid; loss still is not', () => {
    const dup = cleanRun().deliver("c2", 2, { redelivered: false });
    const r = check(dup.ops, { duplicates: "any" });
    expect(r.valid).toBe(true);
    expect(r.duplicatePolicy).toBe("any");
    expect(r.duplicateCounts).toEqual({ redelivered: 0, notRedelivered: 1 });
    const lost = new HistoryBuilder().publish("p1", 1).publish("p1", 2).consume("c1", 1).deliver("c2", 1);
    expect(check(lost.ops, { duplicates: "any" })).toMatchObject({ valid: false, lost: [2] });
  });
  it("a delivered value that was never published is unexpected", () => {
    const h = cleanRun().consume("c1", 99);
    const r = check(h.ops);
    expect(r.valid).toBe(false);
    expect(r.unexpected).toEqual([99]);
    expect(r.lost).toEqual([]);
  });

  it("a delivered value whose publish definitely failed is flagged", () => {
    const h = new HistoryBuilder().publish("p1", 1, "fail").consume("c1", 1);
    const r = check(h.ops);
    expect(r.valid).toBe(false);
    expect(r.failedDelivered).toEqual([1]);
    expect(r.unexpected).toEqual([]);
    expect(r.recovered).toEqual([]);
  });

  it("unknown-outcome publishes that turn up are recovered; those that do not are not lost", () => {
    const h = new HistoryBuilder()
      .publish("p1", 1, "info") // turns up
      .invoke("p1", 2)
      .complete("p1", 2, "fail", TIMEOUT_ERROR) // turns up
      .publish("p1", 3, "info") // never seen
      .invoke("p2", 4) // never completed (the process died); turns up
      .publish("p1", 5, "fail") // definite failure, never seen
      .consume("c1", 1)
      .consume("c1", 2)
      .consume("c1", 4);
    const r = check(h.ops);
    expect(r.valid).toBe(true);
    expect(r.recovered).toEqual([1, 2, 4]);
    expect(r.lost).toEqual([]);
    expect(r.publishes).toEqual({ attempted: 5, confirmed: 0, failed: 1, unknown: 4 });
  });

  describe("order: per queue and producer, confirm-before-invoke implies first-delivered-before", () => {
    it("a value overtaken by one published after its confirm is a violation", () => {
      const h = new HistoryBuilder().publish("p1", 1).publish("p1", 2).consume("c1", 2).consume("c1", 1);
      const r = check(h.ops);
      expect(r.valid).toBe(false);
      expect(r.orderViolationCount).toBe(1);
      expect(r.orderViolations).toEqual([{ queue: "q", producer: "p1", before: 1, after: 2 }]);
    });

    it("concurrent publishes (neither confirmed before the other's invoke) may arrive in any order", () => {
      const h = new HistoryBuilder()
        .invoke("p1", 1)
        .invoke("p1", 2)
        .complete("p1", 2, "ok")
        .complete("p1", 1, "ok")
        .consume("c1", 2)
        .consume("c1", 1);
      expect(check(h.ops).orderViolationCount).toBe(0);
    });

    it("different producers and different queues are not ordered against each other", () => {
      const h = new HistoryBuilder()
        .publish("p1", 1)
        .publish("p2", 2)
        .publish("p1", 3, "ok", "other")
        .publish("p1", 4, "ok", "other")
        .consume("c1", 2)
        .consume("c1", 1)
        .consume("c1", 4, { queue: "other" })
        .consume("c2", 3, { queue: "other" })
        .consume("c2", 4, { queue: "other", redelivered: true });
      const r = check(h.ops);
      // Only 3/4 in queue "other" share a producer; 4 came first.
      expect(r.orderViolations).toEqual([{ queue: "other", producer: "p1", before: 3, after: 4 }]);
    });

    it("only first deliveries count: a redelivery of an earlier value after a later one is fine", () => {
      const h = new HistoryBuilder()
        .publish("p1", 1)
        .publish("p1", 2)
        .deliver("c1", 1)
        .consume("c2", 2)
        .consume("c2", 1, { redelivered: true });
      const r = check(h.ops);
      expect(r.orderViolationCount).toBe(0);
      expect(r.valid).toBe(true);
    });

    it("a value first seen already marked redelivered is not ordered: the broker dispatched it before, to a stream that died", () => {
      const marked = new HistoryBuilder().publish("p1", 1).publish("p1", 2).consume("c1", 2).consume("c1", 1, { redelivered: true });
      expect(check(marked.ops).orderViolationCount).toBe(0);
      expect(check(marked.ops).valid).toBe(true);
      const unmarked = new HistoryBuilder().publish("p1", 1).publish("p1", 2).consume("c1", 2).consume("c1", 1);
      expect(check(unmarked.ops).orderViolationCount).toBe(1);
    });

    it("an unknown-outcome publish that turns up is ordered after values confirmed before it", () => {
      const h = new HistoryBuilder().publish("p1", 1).publish("p1", 2, "info").consume("c1", 2).consume("c1", 1);
      expect(check(h.ops).orderViolations).toEqual([{ queue: "q", producer: "p1", before: 1, after: 2 }]);
    });

    it("consumer scope compares only values first delivered to the same consumer", () => {
      const h = new HistoryBuilder().publish("p1", 1).publish("p1", 2).consume("c2", 2).consume("c1", 1);
      expect(check(h.ops).orderViolationCount).toBe(1);
      expect(check(h.ops, { orderScope: "consumer" }).orderViolationCount).toBe(0);
      const same = new HistoryBuilder().publish("p1", 1).publish("p1", 2).consume("c1", 2).consume("c1", 1);
      expect(check(same.ops, { orderScope: "consumer" }).orderViolationCount).toBe(1);
    });

    it("counts every violation and lists at most the configured number", () => {
      const h = new HistoryBuilder();
      for (let v = 1; v <= 5; v++) h.publish("p1", v);
      for (let v = 5; v >= 1; v--) h.consume("c1", v);
      const r = check(h.ops, { maxOrderViolations: 2 });
      // 2, 3, 4, 5 each overtook an earlier-confirmed value.
      expect(r.orderViolationCount).toBe(4);
      expect(r.orderViolations).toHaveLength(2);
    });
  });

  describe("availability", () => {
    it("is the fraction of attempts confirmed, and the longest gap between confirms bounds unavailability", () => {
      const h = new HistoryBuilder()
        .at(1000)
        .invoke("p1", 1)
        .at(1010)
        .complete("p1", 1, "ok")
        .at(1100)
        .invoke("p1", 2)
        .at(1200)
        .complete("p1", 2, "ok")
        .at(1300)
        .invoke("p1", 3)
        .at(5300)
        .complete("p1", 3, "info")
        .at(5400)
        .invoke("p1", 4)
        .at(6200)
        .complete("p1", 4, "ok")
        .at(6300)
        .invoke("p1", 5)
        .at(6400)
        .complete("p1", 5, "fail")
        .at(9000)
        .consume("c1", 1)
        .consume("c1", 2)
        .consume("c1", 4);
      const r = check(h.ops);
      expect(r.availability).toBeCloseTo(3 / 5);
      expect(r.longestUnavailability).toEqual({ start: 1200, end: 6200 });
      expect(r.longestUnavailabilityMs).toBe(5000);
    });

    it("counts the stretch from the last confirm to the last publish op, and from the first invoke", () => {
      const tail = new HistoryBuilder().at(0).publish("p1", 1).at(100).publish("p1", 2, "info").at(9000).invoke("p1", 3);
      expect(check(tail.ops).longestUnavailability).toEqual({ start: 1, end: 9000 });
      const head = new HistoryBuilder().at(0).invoke("p1", 1).at(7000).complete("p1", 1, "ok").publish("p1", 2);
      expect(check(head.ops).longestUnavailability).toEqual({ start: 0, end: 7000 });
    });

    it("is zero with nothing confirmed out of nothing attempted", () => {
      const r = check(new HistoryBuilder().nemesis("kill").ops);
      expect(r.availability).toBe(0);
      expect(r.longestUnavailability).toBeNull();
      expect(r.valid).toBe(true);
    });
  });

  it("pairs fault starts with their stops, oldest first, and heal closes every open fault", () => {
    const h = new HistoryBuilder()
      .at(100)
      .nemesis("kill", "kill n1")
      .at(200)
      .nemesis("kill", "kill n2")
      .at(300)
      .nemesis("restart", "restart n1")
      .at(400)
      .nemesis("start-partition", "{n1} | {n2 n3}")
      .at(500)
      .nemesis("heal")
      .at(600)
      .nemesis("pause", "pause n3")
      .at(700)
      .publish("p1", 1);
    expect(check(h.ops).faults).toEqual([
      { f: "kill", value: "kill n1", start: 100, end: 300, healed: true },
      { f: "kill", value: "kill n2", start: 200, end: 500, healed: true },
      { f: "start-partition", value: "{n1} | {n2 n3}", start: 400, end: 500, healed: true },
      { f: "pause", value: "pause n3", start: 600, end: 701, healed: false },
    ]);
  });

  it("refuses histories the workload cannot produce", () => {
    expect(() => check(new HistoryBuilder().publish("p1", 1).publish("p1", 1).ops)).toThrow(MalformedHistoryError);
    expect(() => check(new HistoryBuilder().complete("p1", 1, "ok").ops)).toThrow(/without invoke/);
    const twice = new HistoryBuilder().publish("p1", 1).complete("p1", 1, "info");
    expect(() => check(twice.ops)).toThrow(/completed twice/);
    const other = new HistoryBuilder().invoke("p1", 1).complete("p2", 1, "ok");
    expect(() => check(other.ops)).toThrow(/completed by p2/);
  });
});
