import { describe, expect, it } from "vitest";
import { MAX_TRACKED_CONSUMERS, StreamConsumers } from "../src/stream-consumers.ts";

/** A stream with consumer "a" subscribed, taken, and given session tags 1..n. */
function streamWith(n: number): StreamConsumers {
  const c = new StreamConsumers();
  expect(c.subscribe({ queue: "q", consumerTag: "a", prefetch: 10 })).toBe(true);
  c.sent("a");
  c.taken("a");
  for (let t = 1; t <= n; t++) expect(c.delivered("a", t)).toBe(t);
  return c;
}

describe("a stream's consumers across sessions", () => {
  it("in the first session, tags pass as they are", () => {
    const c = streamWith(3);
    expect(c.settle("a", 2, false)).toEqual({ kind: "session", deliveryTag: 2 });
    expect(c.clientTag("a", 3)).toBe(3);
  });

  it("after a session ends, the next one's tags continue above every tag given, and old tags are void", () => {
    const c = streamWith(5);
    c.sessionEnded();
    expect(c.subscriptions()).toEqual([{ queue: "q", consumerTag: "a", prefetch: 10 }]);
    // Between sessions nothing new was given: an old tag is void, a higher one unknown.
    expect(c.settle("a", 5, true)).toEqual({ kind: "void" });
    expect(c.settle("a", 6, true)).toEqual({ kind: "unknown" });
    // The next session numbers from 1 again; the client sees 6, 7.
    expect(c.delivered("a", 1)).toBe(6);
    expect(c.delivered("a", 2)).toBe(7);
    expect(c.settle("a", 7, false)).toEqual({ kind: "session", deliveryTag: 2 });
    expect(c.settle("a", 3, false)).toEqual({ kind: "void" });
    expect(c.clientTag("a", 2)).toBe(7);
    expect(c.clientTag("a", 0)).toBe(0);
    // A third session starts above the second's.
    c.sessionEnded();
    expect(c.delivered("a", 1)).toBe(8);
  });

  it("makes again only the subscriptions not cancelled, with their latest prefetch", () => {
    const c = streamWith(0);
    c.subscribe({ queue: "r", consumerTag: "b", prefetch: 1 });
    c.setPrefetch("a", 50);
    c.cancelled("b");
    c.sessionEnded();
    expect(c.subscriptions()).toEqual([{ queue: "q", consumerTag: "a", prefetch: 50 }]);
  });

  it("a refused subscribe is not made again; a refused resubscription says the consumer was taken before", () => {
    const c = new StreamConsumers();
    c.subscribe({ queue: "missing", consumerTag: "x" });
    c.sent("x");
    expect(c.refused("x")).toEqual({ subscribe: true, wasTaken: false });
    expect(c.subscriptions()).toEqual([]);

    const d = streamWith(1);
    d.sessionEnded();
    d.sent("a");
    expect(d.refused("a")).toEqual({ subscribe: true, wasTaken: true });
    // An error naming a consumer whose subscribe was not awaiting an answer is not a refusal.
    expect(d.refused("a")).toEqual({ subscribe: false, wasTaken: false });
  });

  it("a second subscribe of a taken tag leaves the first as it is", () => {
    const c = streamWith(2);
    expect(c.subscribe({ queue: "other", consumerTag: "a" })).toBe(false);
    c.sessionEnded();
    expect(c.subscriptions()).toEqual([{ queue: "q", consumerTag: "a", prefetch: 10 }]);
  });

  it("a tag cancelled and subscribed again in a later session keeps rising", () => {
    const c = streamWith(4);
    c.cancelled("a");
    c.sessionEnded();
    expect(c.subscriptions()).toEqual([]);
    c.subscribe({ queue: "q", consumerTag: "a" });
    expect(c.delivered("a", 1)).toBe(5);
    expect(c.settle("a", 4, false)).toEqual({ kind: "void" });
  });

  it(`forgets cancelled tags past ${MAX_TRACKED_CONSUMERS}, oldest first, and never a live one`, () => {
    const c = new StreamConsumers();
    for (let i = 0; i < MAX_TRACKED_CONSUMERS + 10; i++) {
      c.subscribe({ queue: "q", consumerTag: `t${i}` });
      if (i !== 0) c.cancelled(`t${i}`);
      c.delivered(`t${i}`, 1);
    }
    c.sessionEnded();
    // t0 is live and kept; t1..t10 went; t11 is kept, its next tag above its last.
    expect(c.subscriptions().map((s) => s.consumerTag)).toEqual(["t0"]);
    c.subscribe({ queue: "q", consumerTag: "t1" });
    expect(c.delivered("t1", 1)).toBe(1);
    c.subscribe({ queue: "q", consumerTag: "t11" });
    expect(c.delivered("t11", 1)).toBe(2);
  });

  it("leaves tags of consumers it does not know, and tag 0, to the session", () => {
    const c = new StreamConsumers();
    expect(c.settle("nobody", 9, false)).toEqual({ kind: "session", deliveryTag: 9 });
    const d = streamWith(3);
    d.sessionEnded();
    expect(d.settle("a", 0, false)).toEqual({ kind: "session", deliveryTag: 0 });
    expect(d.delivered("nobody", 4)).toBe(4);
  });
});
