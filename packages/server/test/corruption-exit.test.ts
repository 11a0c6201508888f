// A corrupt data directory is told apart from other failures wherever it is wrapped, and the
// report names the damage and a replace command aimed at the other members.
import { CorruptionError, StorageFailedError } from "@raftmq/storage";
import { describe, expect, it } from "vitest";
import { corruptionReport, DATA_CORRUPT_EXIT_CODE, findCorruption } from "../src/corruption-exit.ts";
import { resolveNodeConfig } from "../src/node-config.ts";

describe("findCorruption", () => {
  it("finds the CorruptionError itself or behind a failed write", () => {
    const damage = new CorruptionError("table file 000014.ldb", "/var/raftmq", "data block 3 fails its checksum");
    expect(findCorruption(damage)).toBe(damage);
    const wrapped = new StorageFailedError("/var/raftmq", "write failed", { cause: damage });
    expect(findCorruption(new Error("raft step", { cause: wrapped }))).toBe(damage);
  });

  it("is null for failures that are not damage", () => {
    expect(findCorruption(new StorageFailedError("/var/raftmq", "write failed: ENOSPC", { cause: new Error("ENOSPC") }))).toBeNull();
    expect(findCorruption("not an error")).toBeNull();
  });
});

describe("corruptionReport", () => {
  it("names the record and directory and gives a replace command through the other members", () => {
    const config = resolveNodeConfig(
      ["--insecure", "--node-id", "2", "--data-dir", "/var/raftmq", "--host", "127.0.0.1", "--peer-port", "7302", "--client-port", "7202", "--initial-cluster", "1=127.0.0.1:7301/127.0.0.1:7201,2=127.0.0.1:7302/127.0.0.1:7202,3=127.0.0.1:7303/127.0.0.1:7203"],
      {},
    );
    const report = corruptionReport(new CorruptionError("entry 42", "/var/raftmq", "checksum mismatch"), config, "at startup");
    expect(report.event).toBe("data-corrupt");
    expect(report.record).toBe("entry 42");
    expect(report.exitCode).toBe(DATA_CORRUPT_EXIT_CODE);
    expect(report.command).toBe(
      "raftmqctl --addresses 127.0.0.1:7201,127.0.0.1:7203 members replace 2 <new-id> 127.0.0.1:7302 127.0.0.1:7202 --data-dir /var/raftmq",
    );
    expect(report.msg).toContain("found at startup");
    expect(report.msg).toContain(report.command);
  });
});
