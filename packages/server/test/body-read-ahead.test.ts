// Bodies read ahead of deliveries: read off the loop once, handed out once, bounded in memory,
// and never the wrong bytes.
import { describe, expect, it } from "vitest";
import { type AsyncBodySource, BodyReadAhead } from "../src/body-read-ahead.ts";

/** A store of bodies whose reads resolve when the test says so. */
class FakeSource implements AsyncBodySource {
  readonly reads: number[][] = [];
  private readonly waiting: (() => void)[] = [];
  fail = false;
  constructor(private readonly bodies: Map<number, Uint8Array>) {}

  readManyAsync(keys: readonly number[]): Promise<(Uint8Array | null)[]> {
    this.reads.push([...keys]);
    return new Promise((resolve, reject) => {
      this.waiting.push(() => (this.fail ? reject(new Error("read failed")) : resolve(keys.map((k) => this.bodies.get(k) ?? null))));
    });
  }

  async answerAll(): Promise<void> {
    for (const answer of this.waiting.splice(0)) answer();
    await new Promise((r) => setImmediate(r));
  }
}

const body = (key: number, size = 100) => new Uint8Array(size).fill(key % 256);
const refs = (keys: number[], size = 100) => keys.map((bodyKey) => ({ bodyKey, bodySize: size }));

describe("BodyReadAhead", () => {
  it("reads each wanted body once, off the loop, and hands it out once", async () => {
    const source = new FakeSource(new Map([1, 2, 3].map((k) => [k, body(k)])));
    const ahead = new BodyReadAhead(source);
    ahead.want(refs([1, 2, 3]));
    // Wanted again while being read: not read twice.
    ahead.want(refs([1, 2, 3]));
    expect(source.reads).toEqual([[1, 2, 3]]);
    expect(ahead.take(1)).toBeUndefined();
    await source.answerAll();
    expect(ahead.take(2)).toEqual(body(2));
    expect(ahead.take(2)).toBeUndefined();
    // Held ones are not read again either.
    ahead.want(refs([1, 3, 4]));
    expect(source.reads).toEqual([[1, 2, 3], [4]]);
    await source.answerAll();
    expect(ahead.take(1)).toEqual(body(1));
    expect(ahead.take(3)).toEqual(body(3));
    // A key the store does not have is simply not held: the delivery reads it and reports it.
    expect(ahead.take(4)).toBeUndefined();
    expect(ahead.read).toBe(3);
    expect(ahead.hits).toBe(3);
    expect(ahead.bytes).toBe(0);
  });

  it("never holds or reads more than its bound", async () => {
    const bodies = new Map(Array.from({ length: 100 }, (_, i) => [i, body(i, 1000)]));
    const source = new FakeSource(bodies);
    const ahead = new BodyReadAhead(source, 10_000);
    ahead.want(refs([...bodies.keys()], 1000));
    // Only as many as fit are asked for.
    expect(source.reads.flat()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await source.answerAll();
    expect(ahead.bytes).toBe(10_000);
    // Full: nothing more is read until some are taken.
    ahead.want(refs([10, 11], 1000));
    expect(source.reads.flat().length).toBe(10);
    ahead.take(0);
    ahead.take(1);
    ahead.want(refs([10, 11, 12], 1000));
    expect(source.reads.at(-1)).toEqual([10, 11]);
    await source.answerAll();
    expect(ahead.bytes).toBeLessThanOrEqual(10_000);
  });

  it("drops the oldest when bodies turn out larger than their refs said", async () => {
    const source = new FakeSource(new Map([1, 2, 3].map((k) => [k, body(k, 600)])));
    const ahead = new BodyReadAhead(source, 1000);
    ahead.want(refs([1], 300));
    await source.answerAll();
    ahead.want(refs([2], 300));
    await source.answerAll();
    expect(ahead.bytes).toBeLessThanOrEqual(1000);
    expect(ahead.take(1)).toBeUndefined();
    expect(ahead.take(2)).toEqual(body(2, 600));
  });

  it("a failed read leaves the bodies to be read at delivery and may be asked again", async () => {
    const source = new FakeSource(new Map([[1, body(1)]]));
    const ahead = new BodyReadAhead(source);
    source.fail = true;
    ahead.want(refs([1]));
    await source.answerAll();
    expect(ahead.take(1)).toBeUndefined();
    source.fail = false;
    ahead.want(refs([1]));
    await source.answerAll();
    expect(ahead.take(1)).toEqual(body(1));
  });
});
