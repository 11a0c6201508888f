import { describe, expect, it } from "vitest";
import { AckGatherer } from "../src/ack-gatherer.ts";

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("AckGatherer", () => {
  it("sends the acks of one turn once per consumer, in arrival order", async () => {
    const sent: [string, number[]][] = [];
    const g = new AckGatherer((tag, tags) => sent.push([tag, tags]));
    g.add("a", 3);
    g.add("b", 1);
    g.add("a", 1);
    expect(sent).toEqual([]);
    await turn();
    expect(sent).toEqual([
      ["a", [3, 1]],
      ["b", [1]],
    ]);
    g.add("a", 4);
    await turn();
    expect(sent.at(-1)).toEqual(["a", [4]]);
  });

  it("sends at once when flushed, or when one consumer reaches the bound, and never twice", async () => {
    const sent: [string, number[]][] = [];
    const g = new AckGatherer((tag, tags) => sent.push([tag, tags]), 3);
    g.add("a", 1);
    g.flush();
    expect(sent).toEqual([["a", [1]]]);
    for (const t of [2, 3, 4, 5]) g.add("a", t);
    expect(sent).toEqual([
      ["a", [1]],
      ["a", [2, 3, 4]],
    ]);
    await turn();
    await turn();
    expect(sent).toEqual([
      ["a", [1]],
      ["a", [2, 3, 4]],
      ["a", [5]],
    ]);
  });
});
