// The one table of limits is complete and tied to the code: every cluster setting is a row, node
// option rows are real options with their real defaults, and the schema's depth is what it says.
import { loadSync } from "@grpc/proto-loader";
import { defaultLimits, limitKeys } from "@raftmq/broker";
import { PROTO_FILES, PROTO_INCLUDE_DIR } from "@raftmq/proto/files";
import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_METADATA_BYTES } from "../src/http2-limits.ts";
import { limitsMarkdown, limitsTable, SCHEMA_MAX_DEPTH, settingsInTable } from "../src/limits-table.ts";
import { NODE_OPTIONS } from "../src/node-config.ts";

describe("the limits table", () => {
  const rows = limitsTable();

  it("names each limit once", () => {
    const names = rows.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it("has a row for every cluster setting, once, with the setting's default", () => {
    expect([...settingsInTable()].sort()).toEqual([...limitKeys].sort());
    for (const r of rows) if (typeof r.setBy === "object" && "setting" in r.setBy) expect(r.default, r.name).toBe(defaultLimits[r.setBy.setting]);
  });

  it("takes node option rows from the options themselves", () => {
    const optionRows = rows.filter((r) => typeof r.setBy === "object" && "option" in r.setBy);
    expect(optionRows.map((r) => r.name)).toEqual(expect.arrayContaining(["maxMetadataBytes", "maxStreamsPerConnection", "publishStreamWindow", "consumeMaxPendingBytes", "clientKeepaliveMs"]));
    for (const r of optionRows) {
      const spec = NODE_OPTIONS.find((s) => s.key === r.name);
      expect(spec, r.name).toBeDefined();
      expect(String(r.default)).toBe(spec?.defaultText);
    }
    expect(rows.find((r) => r.name === "maxMetadataBytes")?.default).toBe(DEFAULT_MAX_METADATA_BYTES);
  });

  it("renders as Markdown, one line per row, with where each limit is set", () => {
    const md = limitsMarkdown();
    expect(md.trim().split("\n")).toHaveLength(rows.length + 2);
    expect(md).toContain("| `maxPropertyStringBytes` | 255 UTF-8 bytes | cluster setting `maxPropertyStringBytes` (1 to 65536) |");
    expect(md).toContain("| `maxBodyBytes` | 16777216 bytes (16 MiB) | cluster setting `maxMessageBytes` (1 to 33554432) |");
    expect(md).toContain("| `maxMetadataBytes` | 16384 bytes (16 KiB) | node option `--max-metadata-bytes` |");
    expect(md).toContain("| `nameCharacters` | none of U+0000–U+001F, U+007F | fixed |");
  });
});

describe("the schema's nesting depth", () => {
  type Descriptor = { name: string; field: { type: string; typeName: string }[] };
  const defs = loadSync([...PROTO_FILES], { includeDirs: [PROTO_INCLUDE_DIR, `${PROTO_INCLUDE_DIR}/raftmq/v1`] });
  const messages = new Map<string, Descriptor>();
  const requests: string[] = [];
  for (const def of Object.values(defs)) {
    if ("format" in def && def.format === "Protocol Buffer 3 DescriptorProto") {
      const t = def.type as Descriptor;
      messages.set(t.name, t);
    } else if (!("format" in def)) {
      for (const method of Object.values(def)) requests.push((method.requestType.type as Descriptor).name);
    }
  }

  function depth(name: string, path: readonly string[]): number {
    if (path.includes(name)) throw new Error(`message ${[...path, name].join(" > ")} contains itself`);
    const m = messages.get(name);
    if (m === undefined) throw new Error(`no message ${name}`);
    const inner = m.field.filter((f) => f.type === "TYPE_MESSAGE").map((f) => depth(f.typeName.split(".").at(-1) ?? "", [...path, name]));
    return 1 + Math.max(0, ...inner);
  }

  it("no request nests deeper than SCHEMA_MAX_DEPTH, and no message contains itself", () => {
    expect(requests.length).toBeGreaterThan(20);
    expect(Math.max(...requests.map((r) => depth(r, [])))).toBe(SCHEMA_MAX_DEPTH);
  });
});
