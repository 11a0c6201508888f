// Fetching the bodies a received snapshot refers to. A snapshot names bodies by key but does not
// carry them; the node that received it asks its peers (the leader first) for the bodies its own
// store lacks, a bounded batch per call, and stores them. A body that every peer answered it does
// not hold belongs to a message settled since the snapshot was taken: the log entries after the
// snapshot settle it here too, so it is never delivered.
import { MAX_FETCH_KEYS } from "./peer-transport.ts";

export interface BodyFetchOptions {
  /** Peers to ask, best first (the leader); asked again every round. */
  peers(): number[];
  fetch(peerId: number, keys: readonly number[]): Promise<{ key: number | Long; found: boolean; body: Uint8Array }[]>;
  store(bodies: { key: number; bytes: Uint8Array }[]): void;
  /** Waits between rounds while some peer could not be asked. */
  pause(ms: number): Promise<void>;
  stopped(): boolean;
  rounds?: number;
  pauseMs?: number;
}

interface Long {
  toNumber(): number;
}

export interface BodyFetchOutcome {
  fetched: number;
  /** Held by no peer that answered: settled since. */
  absent: number;
  /** Not answered by any peer within the rounds. */
  unreachable: number;
}

export async function fetchBodies(keys: readonly number[], o: BodyFetchOptions): Promise<BodyFetchOutcome> {
  const rounds = o.rounds ?? 30;
  const pauseMs = o.pauseMs ?? 1000;
  let left = [...keys];
  let fetched = 0;
  let absent = 0;
  for (let round = 0; round < rounds && left.length > 0 && !o.stopped(); round++) {
    if (round > 0) await o.pause(pauseMs);
    const peers = o.peers();
    if (peers.length === 0) continue;
    // Per key still without a body: how many peers answered that they do not hold it.
    const absentAt = new Map<number, number>();
    let pending = left;
    for (const peer of peers) {
      if (pending.length === 0 || o.stopped()) break;
      const still: number[] = [];
      let at = 0;
      while (at < pending.length && !o.stopped()) {
        const chunk = pending.slice(at, at + MAX_FETCH_KEYS);
        let answers: Awaited<ReturnType<BodyFetchOptions["fetch"]>> = [];
        try {
          answers = await o.fetch(peer, chunk);
        } catch {
          answers = [];
        }
        // A peer that failed or answered nothing is not asked for the rest this round.
        if (answers.length === 0) break;
        const found: { key: number; bytes: Uint8Array }[] = [];
        for (const a of answers) {
          const key = typeof a.key === "number" ? a.key : a.key.toNumber();
          if (a.found) found.push({ key, bytes: a.body });
          else {
            still.push(key);
            absentAt.set(key, (absentAt.get(key) ?? 0) + 1);
          }
        }
        o.store(found);
        fetched += found.length;
        at += answers.length;
      }
      for (let i = at; i < pending.length; i++) still.push(pending[i] as number);
      pending = still.sort((a, b) => a - b);
    }
    left = [];
    for (const k of pending) {
      if (absentAt.get(k) === peers.length) absent++;
      else left.push(k);
    }
  }
  return { fetched, absent, unreachable: left.length };
}
