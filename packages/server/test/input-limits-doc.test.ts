// docs/input-limits.md shows the limits the node checks, generated from the same table.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { requestLimitsMarkdown } from "../src/request-limits.ts";

describe("docs/input-limits.md", () => {
  it("holds the limits table the node checks", () => {
    const doc = readFileSync(new URL("../../../docs/input-limits.md", import.meta.url), "utf8");
    expect(doc).toContain(requestLimitsMarkdown().trim());
  });
});
