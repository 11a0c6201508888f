// The simulated application's replicated state machine: a running hash over every applied
// entry. Two nodes agree on everything up to index i exactly when their hashes at i agree.
import type { Entry } from "../src/index.ts";

export interface AppState {
  index: number;
  hash: number;
  /** Applied entries carrying proposal data. */
  proposals: number;
}

export function initialAppState(): AppState {
  return { index: 0, hash: 0x811c9dc5, proposals: 0 };
}

function mix(hash: number, value: number): number {
  let h = hash;
  for (let shift = 0; shift < 32; shift += 8) {
    h ^= (value >>> shift) & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function hashBytes(data: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const byte of data) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function applyEntry(state: AppState, entry: Entry): AppState {
  if (entry.index !== state.index + 1) {
    throw new Error(`the application applies ${entry.index} after ${state.index}`);
  }
  let h = mix(state.hash, entry.index);
  h = mix(h, entry.term);
  h = mix(h, entry.type);
  h = mix(h, hashBytes(entry.data));
  return { index: entry.index, hash: h, proposals: state.proposals + (entry.data.length > 0 && entry.type === 0 ? 1 : 0) };
}

/**
 * Snapshot bytes: a 12-byte header, then filler whose length varies with the state, so
 * snapshots span several InstallSnapshot chunks.
 */
export function encodeAppState(state: AppState): Uint8Array {
  const filler = 40 + (state.proposals % 150);
  const out = new Uint8Array(12 + filler);
  const view = new DataView(out.buffer);
  view.setUint32(0, state.index);
  view.setUint32(4, state.hash);
  view.setUint32(8, state.proposals);
  for (let i = 0; i < filler; i++) out[12 + i] = (state.hash >>> (i % 4)) & 0xff;
  return out;
}

export function decodeAppState(data: Uint8Array): AppState {
  if (data.length < 12) return initialAppState();
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { index: view.getUint32(0), hash: view.getUint32(4), proposals: view.getUint32(8) };
}
