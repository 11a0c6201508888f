// Moving the state-machine version waits for the whole cluster: a member whose code cannot apply
// the new version would stop on the entry that moves to it, so Cluster.SetSettings names every
// member that is behind, or did not answer, and proposes nothing.
import { describe, expect, it } from "vitest";
import { membersBehind } from "../src/cluster-service.ts";

describe("members behind a state-machine version", () => {
  it("names the members whose code applies less, and those that did not say", async () => {
    const versions: Record<number, number> = { 2: 2, 3: 1, 4: 3 };
    const behind = await membersBehind(2, [2, 3, 4, 5], async (id) => {
      const v = versions[id];
      if (v === undefined) throw new Error("deadline exceeded");
      return v;
    });
    expect(behind).toEqual(["node 3 applies state-machine versions up to 1", "node 5 did not say which versions it applies (deadline exceeded)"]);
  });

  it("a node from before versions answers 0, which is behind every version", async () => {
    expect(await membersBehind(1, [2], async () => 0)).toEqual(["node 2 applies state-machine versions up to 0"]);
  });

  it("nobody is behind when every member applies the version", async () => {
    expect(await membersBehind(2, [2, 3], async () => 2)).toEqual([]);
    expect(await membersBehind(2, [], async () => 0)).toEqual([]);
  });
});
