// What the operator's replace command sees in a data directory before it wipes one: a node's own
// directory (log, snapshot database, body store) is intact; a file raftmq never writes makes it
// someone else's.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BodyStore, RaftStorage } from "@raftmq/storage";
import { afterEach, describe, expect, it } from "vitest";
import { BODIES_DIR, inspectDataDir } from "../src/data-verification.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function nodeDataDir(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "raftmq-verdict-"));
  dirs.push(dir);
  const storage = await RaftStorage.open({ dir });
  const entries = Array.from({ length: 20 }, (_, i) => ({ term: 1, index: i + 1, type: 0, data: new Uint8Array([i]) }));
  await storage.save({ hardState: { term: 1, vote: 1, commit: 20 }, entries, snapshot: null });
  await storage.createSnapshot(15, { voters: [1], learners: [] }, new Uint8Array(100).fill(3), 2);
  await storage.close();
  const bodies = await BodyStore.open({ dir: join(dir, BODIES_DIR) }, (error) => {
    throw error;
  });
  bodies.put([{ key: 1, bytes: new Uint8Array([1, 2, 3]) }]);
  await bodies.close();
  return dir;
}

describe("data directory verdicts", () => {
  it("finds a node's own directory, with its snapshot database and body store, intact", async () => {
    const dir = await nodeDataDir();
    expect(await inspectDataDir(dir)).toEqual({ kind: "intact", lastIndex: 20 });
  });

  it("calls a directory holding a file raftmq never writes someone else's", async () => {
    const dir = await nodeDataDir();
    writeFileSync(join(dir, "notes.txt"), "mine");
    expect(await inspectDataDir(dir)).toEqual({ kind: "foreign", strangers: ["notes.txt"] });
  });
});
