import { spawn } from "node:child_process";
import { once } from "node:events";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { DataDirLockedError, RaftStorage } from "../src/index.ts";
import { TempDirs } from "./fixtures/temp-data-dir.ts";

const here = dirname(fileURLToPath(import.meta.url));
const temp = new TempDirs();
afterEach(() => temp.removeAll());

describe("one owner per data directory", () => {
  it("a second open in the same process fails with DataDirLockedError naming the directory", async () => {
    const dir = await temp.make();
    const first = await RaftStorage.open({ dir });
    try {
      const second = RaftStorage.open({ dir });
      await expect(second).rejects.toThrow(DataDirLockedError);
      await expect(second).rejects.toThrow(dir);
    } finally {
      await first.close();
    }
    // Once the owner closes, the directory opens again.
    const third = await RaftStorage.open({ dir });
    await third.close();
  });

  it("an open while another process holds the directory fails with DataDirLockedError", async () => {
    const dir = await temp.make();
    const holder = spawn(process.execPath, ["--import", "tsx", join(here, "fixtures", "hold-data-dir.ts"), dir], {
      cwd: join(here, "..", "..", ".."),
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const [chunk] = (await once(holder.stdout, "data")) as [Buffer];
      expect(chunk.toString()).toContain("holding");
      const error = await RaftStorage.open({ dir }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(DataDirLockedError);
      expect((error as DataDirLockedError).message).toMatch(/locked: another raftmq process/);
    } finally {
      holder.kill("SIGKILL");
      await once(holder, "exit");
    }
    const after = await RaftStorage.open({ dir });
    await after.close();
  });
});
