export { CorruptionError, DataDirLockedError, StorageContractError, StorageFailedError, UnsupportedFormatError } from "./errors.ts";
export {
  DEFAULT_CACHE_BYTES,
  DEFAULT_SNAPSHOT_CHUNK_BYTES,
  DEFAULT_SNAPSHOT_KEEP_ENTRIES,
  DEFAULT_WRITE_BUFFER_BYTES,
  RaftStorage,
  STORAGE_FORMAT_VERSION,
  type StorageOptions,
  type StorageUpdate,
} from "./raft-storage.ts";
export { BodyMissingError, BodyStore, type BodyStoreOptions, bodyKeyBytes, firstRangeEndingAfter, SEGMENT_BYTES, type StoredBody } from "./body-store.ts";
export { SNAPSHOTS_DIR } from "./snapshot-db.ts";
