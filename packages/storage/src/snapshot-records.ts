// How a snapshot lies in the database: its data cut into chunk records plus one manifest. The
// manifest is written last, once the chunks are durable: chunks no manifest names are leftovers
// of a snapshot that was never finished. Reading a snapshot back checks every chunk and the
// whole data's checksum.
import type { Snapshot } from "@raftmq/raft";
import { crc32c } from "./crc32c.ts";
import { CorruptionError } from "./errors.ts";
import { type BatchOp, encodeSnapshotManifest, frame, type SnapshotManifest, unframe } from "./record-codec.ts";
import { snapshotChunkKey, snapshotManifestKey } from "./record-keys.ts";

/** How many chunk records `data` takes. */
export function snapshotChunkCount(data: Uint8Array, chunkBytes: number): number {
  return Math.ceil(data.byteLength / chunkBytes);
}

/** Puts for chunks [from, to) of the snapshot data at `index`. */
export function snapshotChunkPuts(index: number, data: Uint8Array, chunkBytes: number, from: number, to: number, ops: BatchOp[]): void {
  for (let chunk = from; chunk < to; chunk++) {
    const key = snapshotChunkKey(index, chunk);
    const piece = data.subarray(chunk * chunkBytes, Math.min(data.byteLength, (chunk + 1) * chunkBytes));
    ops.push({ type: "put", key, value: frame(key, piece) });
  }
}

/** The put of the manifest for `snapshot`, whose chunks are durable before it is written. */
export function snapshotManifestPut(snapshot: Snapshot, chunkBytes: number, ops: BatchOp[]): SnapshotManifest {
  const { data, meta } = snapshot;
  const manifest: SnapshotManifest = {
    meta: { index: meta.index, term: meta.term, confState: { voters: [...meta.confState.voters], learners: [...meta.confState.learners] } },
    dataBytes: data.byteLength,
    chunkCount: snapshotChunkCount(data, chunkBytes),
    dataChecksum: crc32c(data),
  };
  ops.push({ type: "put", key: snapshotManifestKey, value: encodeSnapshotManifest(snapshotManifestKey, manifest) });
  return manifest;
}

/** Deletes for the chunks of the snapshot at `index` (superseded, or never finished). */
export function snapshotChunkDels(index: number, chunkCount: number, ops: BatchOp[]): void {
  for (let chunk = 0; chunk < chunkCount; chunk++) ops.push({ type: "del", key: snapshotChunkKey(index, chunk) });
}

/** Reassembles and verifies the data a manifest describes. */
export function readSnapshotData(
  manifest: SnapshotManifest,
  read: (key: Uint8Array) => Uint8Array | undefined,
  dir: string,
): Uint8Array {
  const data = new Uint8Array(manifest.dataBytes);
  let offset = 0;
  const index = manifest.meta.index;
  for (let chunk = 0; chunk < manifest.chunkCount; chunk++) {
    const record = `snapshot ${index} chunk ${chunk}`;
    const key = snapshotChunkKey(index, chunk);
    const value = read(key);
    if (value === undefined) throw new CorruptionError(record, dir, "missing although the snapshot manifest lists it");
    const piece = unframe(key, value, record, dir);
    if (offset + piece.byteLength > data.byteLength) {
      throw new CorruptionError(record, dir, `chunks exceed the manifest's ${manifest.dataBytes} bytes`);
    }
    data.set(piece, offset);
    offset += piece.byteLength;
  }
  if (offset !== manifest.dataBytes) {
    throw new CorruptionError(`snapshot ${index}`, dir, `chunks hold ${offset} bytes, the manifest ${manifest.dataBytes}`);
  }
  if (crc32c(data) !== manifest.dataChecksum) {
    throw new CorruptionError(`snapshot ${index}`, dir, "data checksum mismatch");
  }
  return data;
}
