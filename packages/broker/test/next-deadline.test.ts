// nextDeadline: the log time at which a Tick would change something, so that an idle leader
// proposes one only then. Each case checks that a Tick just before the deadline changes nothing
// and one at it does.
import { describe, expect, it } from "vitest";
import { Driver } from "./broker-driver.ts";

describe("nextDeadline", () => {
  it("is Infinity with nothing that expires", () => {
    const d = new Driver();
    expect(d.broker.nextDeadline()).toBe(Number.POSITIVE_INFINITY);
    d.queue("q");
    d.publish("", "q");
    d.publish("", "q", "later", { properties: { expiration: "50" } });
    // Only a queue's head expires (as in RabbitMQ), and this head never does.
    expect(d.broker.nextDeadline()).toBe(Number.POSITIVE_INFINITY);
  });

  it("is when the message at a queue's head expires, per message or by x-message-ttl", () => {
    const d = new Driver();
    d.queue("per-message");
    d.queue("by-queue", { messageTtlMs: 300 });
    d.publish("", "per-message", "m", { properties: { expiration: "500" } });
    d.publish("", "by-queue", "m");
    const published = d.now;
    expect(d.broker.nextDeadline()).toBe(published + 301);
    d.tick(published + 300);
    expect(d.broker.queueInfo("by-queue")?.messagesReady).toBe(1);
    d.tick(published + 301);
    expect(d.broker.queueInfo("by-queue")?.messagesReady).toBe(0);
    expect(d.broker.nextDeadline()).toBe(published + 501);
    d.tick(published + 501);
    expect(d.broker.queueInfo("per-message")?.messagesReady).toBe(0);
    expect(d.broker.nextDeadline()).toBe(Number.POSITIVE_INFINITY);
  });

  it("is when an unused queue reaches x-expires, and not while it has a consumer", () => {
    const d = new Driver();
    d.queue("idle", { expiresMs: 1000 });
    const declared = d.now;
    expect(d.broker.nextDeadline()).toBe(declared + 1001);
    d.tick(declared + 1000);
    expect(d.broker.queueInfo("idle")).toBeDefined();
    d.tick(declared + 1001);
    expect(d.broker.queueInfo("idle")).toBeUndefined();
    d.queue("busy", { expiresMs: 1000 });
    d.subscribe("c", "busy");
    expect(d.broker.nextDeadline()).toBe(Number.POSITIVE_INFINITY);
  });
});
