import { open } from "node:fs/promises";

/** Syncs a directory, so that the names created, renamed or removed in it survive a power loss. */
export async function syncDir(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
