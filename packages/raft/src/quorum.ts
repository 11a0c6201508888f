// Majority arithmetic over the voter set.

export type VoteResult = "won" | "lost" | "pending";

export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The highest index held by a majority of voters: sort the match indexes descending and take
 * the majority-th one. An empty voter set commits nothing.
 */
export function committedIndex(voters: readonly number[], matchOf: (id: number) => number): number {
  if (voters.length === 0) return 0;
  // Insertion sort, descending: voter sets are small, and this runs on every acknowledgement,
  // where Array.prototype.sort's scratch allocations would dominate.
  const matches: number[] = [];
  for (const id of voters) {
    const match = matchOf(id);
    let at = matches.length;
    while (at > 0 && (matches[at - 1] ?? 0) < match) at--;
    matches.splice(at, 0, match);
  }
  return matches[majority(voters.length) - 1] ?? 0;
}

export function voteResult(voters: readonly number[], votes: ReadonlyMap<number, boolean>): VoteResult {
  if (voters.length === 0) return "lost";
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const need = majority(voters.length);
  if (granted >= need) return "won";
  if (granted + missing >= need) return "pending";
  return "lost";
}
