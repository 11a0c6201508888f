// docs/input-limits.md shows every limit, generated from the table the node's code fills.
// RAFTMQ_UPDATE_DOCS=1 rewrites the table in the document instead of checking it.
import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { limitsMarkdown } from "../src/limits-table.ts";

const DOC = new URL("../../../docs/input-limits.md", import.meta.url);
const BEGIN = "<!-- limits table: generated from packages/server/src/limits-table.ts -->";
const END = "<!-- end of limits table -->";

describe("docs/input-limits.md", () => {
  it("holds the limits table the node's code fills, between its markers", () => {
    const doc = readFileSync(DOC, "utf8");
    const start = doc.indexOf(BEGIN);
    const end = doc.indexOf(END);
    expect(start, "the document lacks the table's markers").toBeGreaterThanOrEqual(0);
    expect(end).toBeGreaterThan(start);
    const table = `${BEGIN}\n\n${limitsMarkdown()}\n${END}`;
    if (process.env.RAFTMQ_UPDATE_DOCS === "1") writeFileSync(DOC, doc.slice(0, start) + table + doc.slice(end + END.length));
    else expect(doc.slice(start, end + END.length)).toBe(table);
  });
});
