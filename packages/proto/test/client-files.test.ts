// A client compiles the client API's files alone: the log schema, the snapshot format and the
// peer protocol stay internal to the cluster.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import protobuf from "protobufjs";
import { afterAll, describe, expect, it } from "vitest";

const PROTO_ROOT = new URL("../../../proto/", import.meta.url).pathname;
const CLIENT_FILES = ["raftmq/v1/broker.proto", "raftmq/v1/cluster.proto", "raftmq/v1/access.proto"];
const INTERNAL_FILES = ["raftmq/v1/command.proto", "raftmq/v1/broker_state.proto", "raftmq/v1/raft.proto"];

/** Every file `files` import, directly or not, themselves included. */
function importClosure(files: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const pending = [...files];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(join(PROTO_ROOT, file), "utf8");
    for (const m of text.matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)";/gm)) pending.push(m[1] as string);
  }
  return seen;
}

describe("the client API's files", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("import none of the cluster's internal files", () => {
    const closure = importClosure(CLIENT_FILES);
    for (const internal of INTERNAL_FILES) expect(closure.has(internal), `${internal} is imported by a client file`).toBe(false);
    expect([...closure].sort()).toEqual(["raftmq/v1/access.proto", "raftmq/v1/broker.proto", "raftmq/v1/cluster.proto", "raftmq/v1/types.proto"]);
  });

  it("compile, with every type resolved, from a folder that holds only them", () => {
    const dir = mkdtempSync(join(tmpdir(), "raftmq-client-protos-"));
    dirs.push(dir);
    for (const file of importClosure(CLIENT_FILES)) {
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      cpSync(join(PROTO_ROOT, file), join(dir, file));
    }
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (isAbsolute(target) ? target : join(dir, target));
    root.loadSync(CLIENT_FILES.map((f) => join(dir, f)));
    expect(() => root.resolveAll()).not.toThrow();
    expect(root.lookupService("raftmq.v1.Broker").methods.Publish).toBeDefined();
    expect(root.lookupType("raftmq.v1.OutboundMessage").fields.properties?.resolvedType?.fullName).toBe(".raftmq.v1.MessageProperties");
    expect(() => root.lookupType("raftmq.v1.Command")).toThrow();
  });
});
