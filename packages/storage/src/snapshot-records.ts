// How a snapshot lies in the database: its data cut into chunk records plus one manifest,
// all written in one batch. Reading it back checks every chunk and the whole data's checksum.
import type { Snapshot } from "@raftmq/raft";
import { crc32c } from "./crc32c.ts";
import { CorruptionError } from "./errors.ts";
import { type BatchOp, encodeSnapshotManifest, frame, type SnapshotManifest, unframe } from "./record-codec.ts";
import { snapshotChunkKey, snapshotManifestKey } from "./record-keys.ts";

/** Puts for the manifest and chunks of `snapshot`; returns the manifest that describes them. */
export function snapshotPuts(snapshot: Snapshot, chunkBytes: number, ops: BatchOp[]): SnapshotManifest {
  const { data, meta } = snapshot;
  const chunkCount = Math.ceil(data.byteLength / chunkBytes);
  for (let chunk = 0; chunk < chunkCount; chunk++) {
    const key = snapshotChunkKey(meta.index, chunk);
    const piece = data.subarray(chunk * chunkBytes, Math.min(data.byteLength, (chunk + 1) * chunkBytes));
    ops.push({ type: "put", key, value: frame(key, piece) });
  }
  const manifest: SnapshotManifest = {
    meta: { index: meta.index, term: meta.term, confState: { voters: [...meta.confState.voters], learners: [...meta.confState.learners] } },
    dataBytes: data.byteLength,
    chunkCount,
    dataChecksum: crc32c(data),
  };
  // Same batch as the chunks: LevelDB applies a batch whole or not at all, so a manifest is
  // never seen without its chunks.
  ops.push({ type: "put", key: snapshotManifestKey, value: encodeSnapshotManifest(snapshotManifestKey, manifest) });
  return manifest;
}

/** Deletes for the chunks a (superseded) manifest describes. */
export function snapshotChunkDels(manifest: SnapshotManifest, ops: BatchOp[]): void {
  for (let chunk = 0; chunk < manifest.chunkCount; chunk++) {
    ops.push({ type: "del", key: snapshotChunkKey(manifest.meta.index, chunk) });
  }
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
