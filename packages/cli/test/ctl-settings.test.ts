// `raftmqctl settings set name=value ...` checks what it is given before anything is sent: a name
// that is no cluster setting would otherwise be dropped on the wire unseen.
import { describe, expect, it } from "vitest";
import { parseSettingAssignments } from "../src/ctl-settings-command.ts";

describe("settings set arguments", () => {
  it("take name=value pairs of cluster settings, the request limits among them", () => {
    expect(parseSettingAssignments(["maxPropertyStringBytes=1024", "maxDeaths=0", "dedupWindow=100"])).toEqual({ maxPropertyStringBytes: 1024, maxDeaths: 0, dedupWindow: 100 });
  });

  it("refuse an unknown name, listing the settings", () => {
    expect(() => parseSettingAssignments(["maxPropertyBytes=1"])).toThrow(/no cluster setting "maxPropertyBytes"; the settings are .*maxPropertyStringBytes.*maxDeathRoutingKeys/);
  });

  it("refuse what is no whole number, a name given twice, and nothing at all", () => {
    expect(() => parseSettingAssignments(["maxDeaths=-1"])).toThrow(/is not name=value with a whole number/);
    expect(() => parseSettingAssignments(["maxDeaths=1.5"])).toThrow(/is not name=value/);
    expect(() => parseSettingAssignments(["maxDeaths"])).toThrow(/is not name=value/);
    expect(() => parseSettingAssignments(["maxDeaths=1", "maxDeaths=2"])).toThrow("maxDeaths is given twice");
    expect(() => parseSettingAssignments(["maxDeaths=99999999999999999999"])).toThrow(/too large/);
    expect(() => parseSettingAssignments([])).toThrow(/at least one/);
  });
});
