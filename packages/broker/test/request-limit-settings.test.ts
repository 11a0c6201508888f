// The request limits (maxMessagesPerPublish, maxPropertyStringBytes, ...) are cluster settings from
// state-machine version 3: replicated, carried by snapshots, restored as their defaults from data
// written before them, and never read by apply, so every entry applies alike under any of them.
import type { raftmq } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import { Broker, type BrokerLimits, type CommandResult, defaultLimits, limitRanges, REQUEST_LIMITS_VERSION, type RequestLimitSettings, requestLimitKeys, validateCommand } from "../src/index.ts";
import { Driver, editFirstPiece } from "./broker-driver.ts";

type Settings = raftmq.v1.ClusterSettings.$Properties;

const set = (settings: Settings, machineVersion = REQUEST_LIMITS_VERSION): raftmq.v1.Command.$Properties => ({ setClusterSettings: { machineVersion, settings } });

/** Every request limit at its smallest: a front end under these refuses nearly every publish. */
const tightest: RequestLimitSettings = Object.fromEntries(requestLimitKeys.map((k) => [k, limitRanges[k].min])) as unknown as RequestLimitSettings;

function requestLimitsOf(limits: Readonly<BrokerLimits>): Partial<BrokerLimits> {
  return Object.fromEntries(requestLimitKeys.map((k) => [k, limits[k]]));
}

describe("request limits among the cluster settings", () => {
  it("start at the defaults the front end checked before they were settings", () => {
    expect(requestLimitsOf(new Broker().settings())).toEqual({
      maxMessagesPerPublish: 10_000,
      maxPropertyStringBytes: 255,
      maxHeaderValueBytes: 65_536,
      maxArgumentsBytes: 4096,
      messageOverheadBytes: 65_536,
      maxDeaths: 64,
      maxDeathRoutingKeys: 64,
    });
  });

  it("change through SetClusterSettings of version 3, which answers them with the rest", () => {
    const d = new Driver();
    const out = d.ok(set({ maxPropertyStringBytes: 100, maxDeaths: 0 }));
    expect(out.result).toMatchObject({ kind: "setClusterSettings", machineVersion: 3, settings: { ...defaultLimits, maxPropertyStringBytes: 100, maxDeaths: 0 } });
    expect(d.broker.settings()).toEqual({ ...defaultLimits, maxPropertyStringBytes: 100, maxDeaths: 0 });
  });

  it("an entry from before them (version 2, their fields absent) applies as it always did and leaves them at their defaults", () => {
    const d = new Driver();
    const out = d.ok(set({ dedupWindow: 9 }, 2));
    expect(out.result).toMatchObject({ machineVersion: 2, settings: { ...defaultLimits, dedupWindow: 9 } });
    expect(requestLimitsOf(d.broker.settings())).toEqual(requestLimitsOf(defaultLimits));
  });

  it("an entry of version 2 may not set them: older code would drop the field and hold another value", () => {
    const command = set({ maxPropertyStringBytes: 100 }, 2);
    expect(validateCommand(command, defaultLimits)).toEqual({
      code: "INVALID_ARGUMENT",
      message: "cluster setting maxPropertyStringBytes needs machine_version 3 or later (older nodes do not keep it); set_cluster_settings named 2",
    });
    // One that reached the log anyway changes nothing.
    const d = new Driver();
    expect(d.run(command).result).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
    expect(d.broker.settings()).toEqual(defaultLimits);
    expect(d.broker.machineVersion()).toBe(1);
  });

  const outOfRange: [keyof RequestLimitSettings, number][] = [
    ["maxMessagesPerPublish", 0],
    ["maxMessagesPerPublish", 100_001],
    ["maxPropertyStringBytes", 0],
    ["maxPropertyStringBytes", 65_537],
    ["maxHeaderValueBytes", 0],
    ["maxHeaderValueBytes", 16 * 1024 * 1024 + 1],
    ["maxArgumentsBytes", 1024 * 1024 + 1],
    ["messageOverheadBytes", 16 * 1024 * 1024 + 1],
    ["maxDeaths", 4097],
    ["maxDeathRoutingKeys", 4097],
    ["maxDeaths", 1.5],
  ];
  for (const [key, value] of outOfRange) {
    it(`refuses ${key} = ${value}`, () => {
      const { min, max } = limitRanges[key];
      expect(validateCommand(set({ [key]: value }), defaultLimits)).toEqual({ code: "INVALID_ARGUMENT", message: `cluster setting ${key} must be an integer in [${min}, ${max}], got ${value}` });
    });
  }

  it("at their largest, body and overhead together still fit, with room to spare, in a 64 MiB gRPC message", () => {
    expect(limitRanges.maxMessageBytes.max + limitRanges.messageOverheadBytes.max).toBeLessThanOrEqual(48 * 1024 * 1024);
  });
});

describe("apply never reads them", () => {
  // What a front end under the tightest limits would refuse, every piece of it.
  const oversized: raftmq.v1.Command.$Properties[] = [
    { declareQueue: { name: "q" } },
    { bind: { exchange: "amq.headers", queue: "q", arguments: [{ key: "x-match", value: { stringValue: "any" } }, { key: "k", value: { stringValue: "v".repeat(300) } }] } },
    {
      publish: {
        exchange: "amq.headers",
        routingKey: "q",
        body: new Uint8Array(10),
        properties: {
          messageId: "m".repeat(200),
          headers: [{ key: "k", value: { stringValue: "v".repeat(300) } }],
          deaths: [{ queue: "q", reason: "rejected", count: 1, routingKeys: ["a", "b"] }],
        },
      },
    },
    { publish: { routingKey: "q", body: new Uint8Array(3), properties: { appId: "a".repeat(1000) } } },
    { get: { queue: "q", noAck: true } },
  ];

  function applyAll(limits: Settings | null): { results: CommandResult[]; bytes: Buffer } {
    const d = new Driver();
    d.ok(set(limits ?? {}));
    const results = oversized.map((c) => d.run(c).result);
    return { results, bytes: Buffer.from(d.broker.snapshot()) };
  }

  it("the same entries answer the same, and leave the same state apart from the settings, under the defaults and under the tightest limits", () => {
    const loose = applyAll(null);
    const tight = applyAll(tightest);
    expect(loose.results.every((r) => r.ok)).toBe(true);
    expect(tight.results).toEqual(loose.results);
    const withoutSettings = (bytes: Buffer) =>
      editFirstPiece(bytes, (first) => {
        first.settings = null;
      });
    expect(Buffer.from(withoutSettings(tight.bytes)).equals(Buffer.from(withoutSettings(loose.bytes)))).toBe(true);
  });
});

describe("snapshots carry them", () => {
  it("restores the values in force, to the same bytes", () => {
    const d = new Driver();
    d.ok(set({ maxMessagesPerPublish: 7, maxPropertyStringBytes: 1000, maxHeaderValueBytes: 10, maxArgumentsBytes: 0, messageOverheadBytes: 5, maxDeaths: 3, maxDeathRoutingKeys: 2 }));
    const bytes = d.broker.snapshot();
    const restored = Broker.restore(bytes);
    expect(restored.settings()).toEqual(d.broker.settings());
    expect(restored.settings()).toMatchObject({ maxMessagesPerPublish: 7, maxPropertyStringBytes: 1000, maxArgumentsBytes: 0, maxDeaths: 3 });
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(bytes))).toBe(true);
  });

  it("a snapshot written before them (their fields absent) restores them as their defaults, the other settings as written", () => {
    const d = new Driver();
    d.ok(set({ dedupWindow: 5, maxPropertyStringBytes: 1000, maxDeaths: 3 }));
    const old = editFirstPiece(d.broker.snapshot(), (first) => {
      const settings = first.settings;
      if (settings == null) throw new Error("the snapshot holds no settings");
      for (const key of requestLimitKeys) settings[key] = null;
      first.machineVersion = 2;
    });
    const restored = Broker.restore(old);
    expect(restored.settings()).toEqual({ ...defaultLimits, dedupWindow: 5 });
    expect(restored.machineVersion()).toBe(2);
  });

  it("a snapshot holding one out of range is refused", () => {
    const d = new Driver();
    d.ok(set({}));
    const bad = editFirstPiece(d.broker.snapshot(), (first) => {
      if (first.settings != null) first.settings.maxMessagesPerPublish = 0;
    });
    expect(() => Broker.restore(bad)).toThrow(/snapshot setting maxMessagesPerPublish/);
  });
});
