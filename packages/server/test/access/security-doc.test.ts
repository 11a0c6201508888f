// docs/security.md shows the permission table and the audit fields the node uses: generated from
// the same data, so a change to either that is not written into the docs fails here.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { AUDIT_FIELDS } from "../../src/access/audit-log.ts";
import { permissionTableMarkdown } from "../../src/access/permission-table.ts";

const doc = readFileSync(new URL("../../../../docs/security.md", import.meta.url), "utf8");

describe("docs/security.md", () => {
  it("holds the permission table the node checks, row for row", () => {
    expect(doc).toContain(permissionTableMarkdown().trim());
  });

  it("documents every audit field", () => {
    for (const f of AUDIT_FIELDS) expect(doc).toContain(`| \`${f.name}\` | ${f.meaning} |`);
  });
});
