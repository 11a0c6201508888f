// Partition shapes, a pure function of (shape, members, leader, seed). A partition is a list of
// groups: nodes inside one group reach each other; a link between two nodes that share no group
// is cut, both ways. Groups may overlap (a bridge node, a ring), so reachability need not be
// transitive.

import { SeededRandom } from "../seeded-random.ts";

export const PARTITION_SHAPES = ["isolate-leader", "halves", "leader-minority", "bridge", "ring"] as const;
export type PartitionShape = (typeof PARTITION_SHAPES)[number];

export interface Partition {
  readonly shape: PartitionShape;
  /** Each group is sorted; the groups are in the order the shape builds them. */
  readonly groups: readonly (readonly number[])[];
}

/** A cut link between two nodes, lower id first. */
export type Cut = readonly [number, number];

/**
 * The groups of `shape` over `members`. `leader` places the leader-targeted shapes; without one
 * (no leader known) a random member stands in. Fewer than three members cannot be split in any
 * interesting way: every shape then isolates one node.
 */
export function partitionOf(shape: PartitionShape, members: readonly number[], leader: number | undefined, seed: number): Partition {
  const nodes = [...new Set(members)].sort((a, b) => a - b);
  if (nodes.length < 2) throw new RangeError(`a partition needs two nodes, got ${nodes.length}`);
  const rng = new SeededRandom(seed);
  const lead = leader !== undefined && nodes.includes(leader) ? leader : rng.pick(nodes);
  const others = (side: readonly number[]) => nodes.filter((n) => !side.includes(n));
  const split = (side: readonly number[]): Partition => ({ shape, groups: [sorted(side), sorted(others(side))] });
  if (nodes.length < 3) return split([lead]);
  switch (shape) {
    case "isolate-leader":
      return split([lead]);
    case "halves": {
      const order = rng.shuffle(nodes);
      return split(order.slice(0, Math.ceil(nodes.length / 2)));
    }
    case "leader-minority": {
      // The leader keeps fewer than half the nodes, so the other side must elect a new one.
      const minority = [lead, ...rng.shuffle(others([lead])).slice(0, Math.floor(nodes.length / 2) - 1)];
      return split(minority);
    }
    case "bridge": {
      // One node in both halves; the halves do not see each other.
      const order = rng.shuffle(nodes);
      const bridge = order[0] as number;
      const rest = order.slice(1);
      const half = Math.floor(rest.length / 2);
      return { shape, groups: [sorted([bridge, ...rest.slice(0, half)]), sorted([bridge, ...rest.slice(half)])] };
    }
    case "ring": {
      // Each node keeps only its two ring neighbours: with five nodes every node still sees a
      // majority (itself and two), but no two nodes see the same one. Three nodes in a full ring
      // all see each other, so the ring of three is left open: a line, the bridge of three.
      const order = rng.shuffle(nodes);
      const links = nodes.length === 3 ? order.length - 1 : order.length;
      const groups: number[][] = [];
      for (let i = 0; i < links; i++) groups.push(sorted([order[i] as number, order[(i + 1) % order.length] as number]));
      return { shape, groups };
    }
    default: {
      const never: never = shape;
      throw new Error(`unknown partition shape ${String(never)}`);
    }
  }
}

/** The nodes `id` still reaches (itself included), sorted. */
export function reachableFrom(partition: Partition, id: number): number[] {
  const seen = new Set<number>([id]);
  for (const g of partition.groups) if (g.includes(id)) for (const n of g) seen.add(n);
  return sorted([...seen]);
}

/** Every cut link between two nodes of the partition, sorted. */
export function cutsOf(partition: Partition): Cut[] {
  const nodes = sorted([...new Set(partition.groups.flat())]);
  const cuts: Cut[] = [];
  for (const a of nodes) {
    const reach = reachableFrom(partition, a);
    for (const b of nodes) if (a < b && !reach.includes(b)) cuts.push([a, b]);
  }
  return cuts;
}

/** "halves {n1 n3} | {n2}" */
export function describePartition(partition: Partition): string {
  return `${partition.shape} ${partition.groups.map((g) => `{${g.map((n) => `n${n}`).join(" ")}}`).join(" | ")}`;
}

function sorted(ids: readonly number[]): number[] {
  return [...ids].sort((a, b) => a - b);
}
