// A node's body store in the power-loss simulation: bodies written at apply are not synced until
// the node stores a snapshot (as BodyStore.sync before RaftStorage.createSnapshot); a power loss
// loses the unsynced ones, a process crash keeps them. A snapshot's stored list of live bodies
// lets the rest go (BodyKeeper). A node that receives a snapshot takes the bodies it lacks from
// its peers, as the real node fetches them.
import { type LiveBodies, liveBodyKeys, type NewBody } from "@raftmq/broker";

export class SimBodies {
  readonly #synced = new Map<number, Uint8Array>();
  readonly #unsynced = new Map<number, Uint8Array | null>();
  /** Reads of a body the store did not have. */
  missingReads = 0;

  put(bodies: readonly NewBody[]): void {
    for (const b of bodies) this.#unsynced.set(b.key, b.bytes);
  }

  /** The body, or null when the store lacks it. */
  get(key: number, size: number): Uint8Array | null {
    if (size === 0) return new Uint8Array(0);
    const u = this.#unsynced.get(key);
    if (u !== undefined) return u;
    return this.#synced.get(key) ?? null;
  }

  sync(): void {
    for (const [k, v] of this.#unsynced) {
      if (v === null) this.#synced.delete(k);
      else this.#synced.set(k, v);
    }
    this.#unsynced.clear();
  }

  /** Deletes (not synced) every body below the frontier that `live` does not name. */
  collect(live: LiveBodies): void {
    const keep = new Set(liveBodyKeys(live));
    for (const k of [...this.#synced.keys(), ...this.#unsynced.keys()]) {
      if (k < live.frontier && !keep.has(k)) this.#unsynced.set(k, null);
    }
  }

  /** Copies from `peers` the bodies `live` names that this store lacks; answers how many none had. */
  fetch(live: LiveBodies, peers: readonly SimBodies[]): number {
    let none = 0;
    for (const k of liveBodyKeys(live)) {
      if (this.get(k, 1) !== null) continue;
      const found = peers.map((p) => p.get(k, 1)).find((b) => b !== null);
      if (found === undefined || found === null) none++;
      else this.#unsynced.set(k, found);
    }
    return none;
  }

  powerLoss(): void {
    this.#unsynced.clear();
  }
}
