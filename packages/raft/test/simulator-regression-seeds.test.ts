// Seeds that once caught a real class of bug (found by injecting it on purpose). They run on
// every change in their own profiles, because the rarest of them (committing a previous-term
// entry by counting, the paper's Figure 8) shows up in about one seed in 1,500.
import { describe, expect, it } from "vitest";
import { profileNamed } from "../sim/fault-profiles.ts";
import { runSimulation } from "../sim/simulation.ts";

const cases: { rule: string; nodes: 3 | 5; profile: string; seeds: number[] }[] = [
  { rule: "§5.4.2 commit only current-term entries by counting (Figure 8)", nodes: 3, profile: "leader-churn", seeds: [1828, 2214, 4580] },
  { rule: "§5.4.2 commit only current-term entries by counting (Figure 8)", nodes: 5, profile: "leader-churn", seeds: [1099] },
];

describe("simulator regression seeds", () => {
  for (const c of cases) {
    it(`${c.rule}: ${c.nodes} nodes, ${c.profile}, seeds ${c.seeds.join(", ")}`, async () => {
      for (const seed of c.seeds) {
        const result = await runSimulation({ seed, nodes: c.nodes, profile: profileNamed(c.profile) });
        expect(result.leadersElected).toBeGreaterThan(0);
      }
    });
  }
});
