// The node storage the simulator drives. Any implementation of LogStorage plus the write side
// of MemoryStorage fits; writes may be asynchronous (the simulator awaits them).
import { type ConfState, type Entry, type HardState, type LogStorage, MemoryStorage, type Snapshot } from "../src/index.ts";

export interface SimStorage extends LogStorage {
  append(entries: readonly Entry[]): void | Promise<void>;
  setHardState(hardState: HardState): void | Promise<void>;
  applySnapshot(snapshot: Snapshot): void | Promise<void>;
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): unknown;
  compact(index: number): void | Promise<void>;
}

/**
 * Opens a node's storage. Called again for the same id after a crash: it must hand back what
 * was persisted before the crash (for a database: reopen the same files).
 */
export type StorageFactory = (id: number) => SimStorage | Promise<SimStorage>;

/** MemoryStorage per node id, kept across restarts like files on a disk. */
export function memoryStorageFactory(): StorageFactory {
  const held = new Map<number, MemoryStorage>();
  return (id) => {
    let storage = held.get(id);
    if (storage === undefined) {
      storage = new MemoryStorage();
      held.set(id, storage);
    }
    return storage;
  };
}
