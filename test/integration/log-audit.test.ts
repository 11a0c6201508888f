// The log audit of rpc-fuzz.test.ts must see what the front end would refuse, in entries it reads
// back from a real data directory: commands that can only get there past the front end are
// crafted here and written with the node's own storage.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type Command, defaultLimits, MACHINE_VERSION } from "@raftmq/broker";
import { raftmq } from "@raftmq/proto";
import { encodeConfChange, type Entry, EntryType } from "@raftmq/raft";
import { RaftStorage } from "../../packages/storage/src/index.ts";
import { type AuditStart, auditEntries, readStoredLog } from "./log-audit.ts";

const START: AuditStart = { limits: defaultLimits, machineVersion: MACHINE_VERSION };

function batch(index: number, ...commands: Command[]): Entry {
  return { index, term: 1, type: EntryType.ENTRY_TYPE_NORMAL, data: raftmq.v1.CommandBatch.encode({ timestampMs: 1, commands }).finish() };
}

const VALID: Command[] = [
  { declareQueue: { name: "orders", arguments: { maxLength: 10 } } },
  { publish: { exchange: "", routingKey: "orders", body: new Uint8Array(3), properties: { contentType: "text/plain", headers: [{ key: "k", value: { stringValue: "v" } }] } } },
  { addVhost: { name: "v1" } },
  { bind: { exchange: "amq.direct", queue: "orders", routingKey: "orders", vhost: "v1" } },
  { sessionDown: { sessionId: "s1" } },
  { tick: {} },
];

describe("the log audit", () => {
  it("passes valid commands, a leader's no-op and a conf change", () => {
    const entries = [
      { index: 1, term: 1, type: EntryType.ENTRY_TYPE_NORMAL, data: new Uint8Array(0) },
      batch(2, ...VALID),
      { index: 3, term: 1, type: EntryType.ENTRY_TYPE_CONF_CHANGE, data: encodeConfChange({ type: raftmq.v1.ConfChangeType.CONF_CHANGE_TYPE_ADD_LEARNER, nodeId: 4, context: new Uint8Array(0) }) },
    ];
    const report = auditEntries(entries, START);
    expect(report.findings).toEqual([]);
    expect([report.entries, report.commands]).toEqual([3, VALID.length]);
  });

  it("names each command the front end would refuse, with its entry and place in the batch", () => {
    const refused: [Command, RegExp][] = [
      [{ declareQueue: { name: "a\u0001b" } }, /control characters/],
      [{ declareExchange: { name: "x".repeat(256), type: 1 } }, /longer than 255 bytes/],
      [{ publish: { exchange: "", routingKey: "q", properties: { contentType: "x".repeat(256) } } }, /content_type/],
      [{ bind: { exchange: "amq.direct", queue: "q", arguments: [{ key: "k", value: { bytesValue: new Uint8Array(64 * 1024 + 1) } }] } }, /value is 65537 bytes/],
      [{ addUser: { name: "a:b" } }, /contains ":"/],
      [{ setPermissions: { user: "u", vhost: "/", configure: "(" } }, /not a JavaScript regular expression/],
      [{}, /no operation/],
    ];
    const report = auditEntries([batch(7, ...VALID.slice(0, 1), ...refused.map(([c]) => c))], START);
    expect(report.findings.map((f) => [f.index, f.position])).toEqual(refused.map((_, i) => [7, i + 1]));
    expect(report.findings.map((f, i) => refused[i]?.[1].test(f.problem))).toEqual(refused.map(() => true));
  });

  it("checks each entry under the settings and version in force at it", () => {
    const v1: AuditStart = { limits: defaultLimits, machineVersion: 1 };
    const report = auditEntries(
      [
        batch(1, { addVhost: { name: "early" } }),
        batch(2, { setClusterSettings: { machineVersion: 2, settings: { maxNameLength: 8 } } }),
        batch(3, { addVhost: { name: "late" } }, { declareQueue: { name: "nine-char" } }),
      ],
      v1,
    );
    expect(report.findings.map((f) => [f.index, f.problem.split(":")[0]])).toEqual([
      [1, "addVhost"],
      [3, "declareQueue"],
    ]);
  });

  it("reports an entry that is not a CommandBatch", () => {
    const report = auditEntries([{ index: 5, term: 1, type: EntryType.ENTRY_TYPE_NORMAL, data: new Uint8Array([0x12, 0xff, 0x01]) }], START);
    expect(report.findings).toHaveLength(1);
    expect(report.findings[0]?.problem).toMatch(/^not a CommandBatch/);
  });

  describe("on a data directory written by the node's storage", () => {
    const dirs: string[] = [];
    afterEach(async () => {
      await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
    });

    it("reads the entries after an index back and finds the one written past the front end", async () => {
      const root = await mkdtemp(join(tmpdir(), "raftmq-log-audit-"));
      dirs.push(root);
      const dir = join(root, "data");
      const storage = await RaftStorage.open({ dir });
      await storage.save({ hardState: { term: 1, vote: 1, commit: 3 }, entries: [batch(1, ...VALID), batch(2, ...VALID), batch(3, { declareQueue: { name: "tab\there" } })], snapshot: null });
      await storage.close();
      const log = await readStoredLog(dir, 1);
      expect([log.firstIndex, log.lastIndex, log.entries.map((e) => e.index)]).toEqual([1, 3, [2, 3]]);
      const report = auditEntries(log.entries, START);
      expect(report.findings.map((f) => [f.index, f.position])).toEqual([[3, 0]]);
      expect(report.findings[0]?.shown).toContain("tab\\there");
    });
  });
});
