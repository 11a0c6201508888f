import { describe, expect, it } from "vitest";
import { EMPTY_PROPERTIES, type MessageHead } from "../src/broker-message.ts";
import { ReadyRing, type ReadyView } from "../src/ready-ring.ts";

const headA: MessageHead = { exchange: "", routingKey: "a", properties: EMPTY_PROPERTIES };
const headB: MessageHead = { exchange: "x", routingKey: "b", properties: { messageId: "m" } };

/** Pushes message `id` with fields derived from it, so any of them can be checked later. */
function push(ring: ReadyRing, id: number): void {
  ring.push(id, id % 3 === 0 ? headB : headA, id * 10, id % 1000, id % 7 === 0 ? 1_000_000 + id : 0);
}

function expectMessage(m: { id: number; bodyKey: number; bodySize: number; expiresAt: number; routingKey: string } | undefined, id: number): void {
  expect(m?.id).toBe(id);
  expect(m?.bodyKey).toBe(id * 10);
  expect(m?.bodySize).toBe(id % 1000);
  expect(m?.expiresAt).toBe(id % 7 === 0 ? 1_000_000 + id : 0);
  expect(m?.routingKey).toBe(id % 3 === 0 ? "b" : "a");
}

function viewIds(v: ReadyView): number[] {
  const out: number[] = [];
  for (let i = 0; i < v.length; i++) {
    expect(v.bodyKey(i)).toBe(v.id(i) * 10);
    expect(v.bodySize(i)).toBe(v.id(i) % 1000);
    expect(v.expiresAt(i)).toBe(v.id(i) % 7 === 0 ? 1_000_000 + v.id(i) : 0);
    expect(v.head(i)).toBe(v.id(i) % 3 === 0 ? headB : headA);
    out.push(v.id(i));
  }
  return out;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe("ReadyRing", () => {
  it("keeps order and every field through growth, chunk boundaries and interleaved shifts", () => {
    const ring = new ReadyRing();
    let next = 1;
    let expected = 1;
    // Push faster than shifting, past several full chunks (8,192 messages each), then drain.
    for (let round = 0; round < 40_000; round++) {
      push(ring, next++);
      if (round % 3 === 0) push(ring, next++);
      if (round % 2 === 0) expectMessage(ring.shift(), expected++);
      expect(ring.length).toBe(next - expected);
    }
    expectMessage(ring.peek(), expected);
    expectMessage(ring.at(ring.length - 1), next - 1);
    expect(ring.bodyKeyAt(5)).toBe((expected + 5) * 10);
    while (ring.length > 0) expectMessage(ring.shift(), expected++);
    expect(expected).toBe(next);
    expect(ring.shift()).toBeUndefined();
    expect(ring.headExpiresAt()).toBeUndefined();
  });

  it("reads expiry as 0 for messages pushed before the first that expires", () => {
    const ring = new ReadyRing();
    ring.push(1, headA, 10, 1, 0);
    ring.push(2, headA, 20, 1, 0);
    ring.push(3, headA, 30, 1, 500);
    ring.push(4, headA, 40, 1, 0);
    expect([1, 2, 3, 4].map((i) => ring.at(i - 1)?.expiresAt)).toEqual([0, 0, 500, 0]);
    expect(ring.headExpiresAt()).toBe(0);
  });

  it("a capture goes on reading what was there while the ring is pushed, shifted, emptied and refilled", () => {
    const ring = new ReadyRing();
    let next = 1;
    for (; next <= 20_000; next++) push(ring, next);
    for (let i = 1; i <= 100; i++) ring.shift();
    const view = ring.capture();
    expect(view.length).toBe(19_900);
    // The ring changes in every way it can: shifts across chunk ends, pushes, emptied, refilled.
    for (let i = 0; i < 15_000; i++) ring.shift();
    for (let i = 0; i < 3_000; i++) push(ring, next++);
    while (ring.length > 0) ring.shift();
    for (let i = 0; i < 10_000; i++) push(ring, 1_000_000 + i);
    expect(viewIds(view)).toEqual(range(101, 20_001));
  });

  it("a capture of a short ring survives the ring emptying and refilling its small first chunk", () => {
    const ring = new ReadyRing();
    for (let id = 1; id <= 5; id++) push(ring, id);
    const view = ring.capture();
    while (ring.length > 0) ring.shift();
    for (let id = 100; id < 140; id++) push(ring, id);
    expect(viewIds(view)).toEqual([1, 2, 3, 4, 5]);
    const second = ring.capture();
    for (let i = 0; i < 10; i++) ring.shift();
    for (let id = 200; id < 300; id++) push(ring, id);
    expect(viewIds(second)).toEqual(range(100, 140));
    expect(ring.length).toBe(130);
    expect(ring.peek()?.id).toBe(110);
  });

  it("an empty ring captures nothing", () => {
    const ring = new ReadyRing();
    expect(ring.capture().length).toBe(0);
    push(ring, 1);
    ring.shift();
    expect(ring.capture().length).toBe(0);
  });
});
