// Cluster settings live in the log: SetClusterSettings changes the limits in force from its entry
// on, alike on every node; snapshots carry them (an older snapshot restores the defaults); an entry
// naming a state-machine version this code cannot apply stops the node; bad values never apply.
import { raftmq } from "@raftmq/proto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Broker, type BrokerLimits, type CommandResult, defaultLimits, limitRanges, MACHINE_VERSION, UnsupportedMachineVersionError, validateCommand } from "../src/index.ts";
import { Driver, editFirstPiece } from "./broker-driver.ts";

type Settings = raftmq.v1.ClusterSettings.$Properties;

function set(settings: Settings, machineVersion = MACHINE_VERSION): raftmq.v1.Command.$Properties {
  return { setClusterSettings: { machineVersion, settings } };
}

function publishAs(d: Driver, producerId: string, sequence: number) {
  return d.publish("", "q", `m${sequence}`, { producerId, sequence });
}

function outcome(out: { result: CommandResult }): string {
  const r = out.result;
  if (!r.ok) return r.error.code;
  if (r.kind !== "publish") throw new Error(`not a publish result: ${r.kind}`);
  return r.duplicate ? "duplicate" : "enqueued";
}

describe("SetClusterSettings changes the limits in force from its entry on", () => {
  it("a smaller dedup window forgets at once what it no longer covers: a retry is answered as of unknown outcome", () => {
    const d = new Driver();
    d.queue("q");
    for (let seq = 1; seq <= 5; seq++) expect(outcome(publishAs(d, "p", seq))).toBe("enqueued");
    expect(outcome(publishAs(d, "p", 2))).toBe("duplicate");

    const changed = d.ok(set({ dedupWindow: 2 })).result;
    expect(changed).toMatchObject({ kind: "setClusterSettings", machineVersion: MACHINE_VERSION, settings: { ...defaultLimits, dedupWindow: 2 } });
    expect(d.broker.settings().dedupWindow).toBe(2);

    expect(outcome(publishAs(d, "p", 2))).toBe("OUTCOME_UNKNOWN");
    expect(outcome(publishAs(d, "p", 3))).toBe("OUTCOME_UNKNOWN");
    expect(outcome(publishAs(d, "p", 4))).toBe("duplicate");
    expect(outcome(publishAs(d, "p", 5))).toBe("duplicate");
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(5);
  });

  it("a larger dedup window remembers more from then on", () => {
    const d = new Driver(undefined, { dedupWindow: 2 });
    d.queue("q");
    for (let seq = 1; seq <= 4; seq++) publishAs(d, "p", seq);
    expect(outcome(publishAs(d, "p", 2))).toBe("OUTCOME_UNKNOWN");
    d.ok(set({ dedupWindow: 8 }));
    for (let seq = 5; seq <= 8; seq++) publishAs(d, "p", seq);
    // 3 and 4 were in the window of 2 when it grew; 1 and 2 were forgotten before.
    expect([1, 2, 3, 4, 8].map((seq) => outcome(publishAs(d, "p", seq)))).toEqual(["OUTCOME_UNKNOWN", "OUTCOME_UNKNOWN", "duplicate", "duplicate", "duplicate"]);
  });

  it("fewer producers remembered forgets the least recently seen at once", () => {
    const d = new Driver();
    d.queue("q");
    for (const p of ["a", "b", "c"]) publishAs(d, p, 1);
    publishAs(d, "a", 2);
    d.ok(set({ maxProducers: 2 }));
    // b was seen least recently: a and c are still remembered, and b's retry is new again.
    expect(["a", "c", "b"].map((p) => outcome(publishAs(d, p, 1)))).toEqual(["duplicate", "duplicate", "enqueued"]);
  });

  it("leaves unset settings as they are and changes size and count limits", () => {
    const d = new Driver(undefined, { maxQueues: 5 });
    d.queue("q");
    d.ok(set({ maxMessageBytes: 4 }));
    d.ok(set({ maxQueues: 1 }));
    expect(d.broker.settings()).toEqual({ ...defaultLimits, maxQueues: 1, maxMessageBytes: 4 });
    expect(d.publish("", "q", "12345").result).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
    expect(d.publish("", "q", "1234").result).toMatchObject({ ok: true });
    expect(d.run({ declareQueue: { name: "q2" } }).result).toMatchObject({ ok: false, error: { code: "RESOURCE_EXHAUSTED" } });
  });

  it("a raised dispatch limit delivers at once, without waiting for the queue's next publish or ack", () => {
    const d = new Driver(undefined, { maxUnackedPerConsumer: 1 });
    d.queue("q");
    for (let i = 0; i < 3; i++) d.publish("", "q", `m${i}`);
    expect(d.subscribe("c", "q").effects).toHaveLength(1);
    const out = d.ok(set({ maxUnackedPerConsumer: 10 }));
    expect(out.effects.filter((e) => e.kind === "deliver")).toHaveLength(2);
  });

  it("hands out the limits in force as a value that later settings do not change", () => {
    const d = new Driver();
    const before = d.broker.settings();
    d.ok(set({ dedupWindow: 7 }));
    expect(before.dedupWindow).toBe(defaultLimits.dedupWindow);
    expect(Object.isFrozen(d.broker.settings())).toBe(true);
  });
});

describe("snapshots carry the settings and the machine version", () => {
  function configured(): Driver {
    const d = new Driver();
    d.queue("q");
    for (let seq = 1; seq <= 6; seq++) publishAs(d, "p", seq);
    d.ok(set({ dedupWindow: 3, maxQueues: 7, timerIntervalMs: 250 }));
    return d;
  }

  it("restores the settings in force, whatever limits the restoring node was given, to the same bytes", () => {
    const d = configured();
    const bytes = d.broker.snapshot();
    const restored = Broker.restore(bytes, { dedupWindow: 100, maxQueues: 100 });
    expect(restored.settings()).toEqual(d.broker.settings());
    expect(restored.machineVersion()).toBe(MACHINE_VERSION);
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(bytes))).toBe(true);
    // The restored node answers the retries the live one answers.
    const live = [1, 3, 4, 6, 7].map((seq) => outcome(publishAs(d, "p", seq)));
    const other = new Driver(restored);
    other.index = d.index;
    expect([1, 3, 4, 6, 7].map((seq) => outcome(publishAs(other, "p", seq)))).toEqual(live);
    expect(live).toEqual(["OUTCOME_UNKNOWN", "OUTCOME_UNKNOWN", "duplicate", "duplicate", "enqueued"]);
  });

  it("restores a snapshot from before replicated settings with the defaults, as version 1", () => {
    const d = configured();
    const old = editFirstPiece(d.broker.snapshot(), (first) => {
      first.settings = null;
      first.machineVersion = 0;
    });
    const restored = Broker.restore(old);
    expect(restored.settings()).toEqual(defaultLimits);
    expect(restored.machineVersion()).toBe(1);
    expect(restored.queueInfo("q")?.messagesReady).toBe(6);
  });

  it("a setting the snapshot does not hold restores as its default; the others as written", () => {
    const d = configured();
    const partial = editFirstPiece(d.broker.snapshot(), (first) => {
      if (first.settings != null) first.settings.timerIntervalMs = null;
    });
    expect(Broker.restore(partial).settings()).toEqual({ ...defaultLimits, dedupWindow: 3, maxQueues: 7 });
  });

  it("a snapshot naming a newer machine version is refused with the typed error", () => {
    const newer = editFirstPiece(configured().broker.snapshot(), (first) => {
      first.machineVersion = MACHINE_VERSION + 1;
    });
    expect(() => Broker.restore(newer)).toThrow(UnsupportedMachineVersionError);
  });

  it("a snapshot holding a setting out of range is refused", () => {
    const bad = editFirstPiece(configured().broker.snapshot(), (first) => {
      if (first.settings != null) first.settings.dedupWindow = 0;
    });
    expect(() => Broker.restore(bad)).toThrow(/snapshot setting dedupWindow/);
  });

  type Op = { op: "publish"; producer: string; sequence: number } | { op: "set"; settings: Settings } | { op: "tick"; dt: number };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 8, arbitrary: fc.record({ op: fc.constant("publish" as const), producer: fc.constantFrom("a", "b", "c"), sequence: fc.integer({ min: 1, max: 12 }) }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("set" as const),
        settings: fc.record(
          { dedupWindow: fc.integer({ min: 1, max: 6 }), maxProducers: fc.integer({ min: 1, max: 3 }), producerIdleMs: fc.integer({ min: 1000, max: 5000 }) },
          { requiredKeys: [] },
        ),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("tick" as const), dt: fc.integer({ min: 0, max: 3000 }) }) },
  );

  function entries(ops: Op[]): Uint8Array[] {
    let now = 1_000;
    const log = [raftmq.v1.CommandBatch.encode({ timestampMs: now, commands: [{ declareQueue: { name: "q" } }] }).finish()];
    for (const o of ops) {
      let command: raftmq.v1.Command.$Properties;
      if (o.op === "publish") command = { publish: { routingKey: "q", body: new Uint8Array([o.sequence]), producerId: o.producer, sequence: o.sequence } };
      else if (o.op === "set") command = set(o.settings);
      else {
        now += o.dt;
        command = { tick: {} };
      }
      log.push(raftmq.v1.CommandBatch.encode({ timestampMs: now, commands: [command] }).finish());
    }
    return log;
  }

  it("with settings changing along the log, a node restored at any index answers and encodes exactly as the live one", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 80 }), fc.nat(), (ops, cut) => {
        const log = entries(ops);
        const at = cut % log.length;
        const live = new Broker();
        for (let i = 0; i < at; i++) live.applyEntry(i + 1, log[i] as Uint8Array);
        const restored = Broker.restore(live.snapshot(), { dedupWindow: 1, maxProducers: 1 });
        const rest = (b: Broker) => log.slice(at).map((data, i) => b.applyEntry(at + i + 1, data));
        expect(rest(restored)).toEqual(rest(live));
        expect(Buffer.from(restored.snapshot()).equals(Buffer.from(live.snapshot()))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

describe("the machine version", () => {
  it("an entry naming a version newer than this code stops the apply with the typed error, before any validation", () => {
    const d = new Driver();
    // Settings out of range too: an older node must not answer INVALID_ARGUMENT where a newer one applies.
    const command = set({ dedupWindow: 0 }, MACHINE_VERSION + 1);
    const caught = (() => {
      try {
        d.run(command);
      } catch (err) {
        return err;
      }
      return null;
    })();
    expect(caught).toBeInstanceOf(UnsupportedMachineVersionError);
    expect(caught).toMatchObject({ required: MACHINE_VERSION + 1, supported: MACHINE_VERSION, source: `entry ${d.index}` });
    const entry = raftmq.v1.CommandBatch.encode({ timestampMs: 5, commands: [{ tick: {} }, command] }).finish();
    expect(() => new Broker().applyEntry(9, entry)).toThrow(`entry 9 needs state-machine version ${MACHINE_VERSION + 1}`);
  });

  it("the version in force is the one the last SetClusterSettings named", () => {
    const d = new Driver();
    expect(d.broker.machineVersion()).toBe(1);
    d.ok(set({}, MACHINE_VERSION));
    expect(d.broker.machineVersion()).toBe(MACHINE_VERSION);
    expect(d.broker.settings()).toEqual(defaultLimits);
  });
});

describe("validation refuses bad settings before they reach the log, and apply refuses them again", () => {
  const cases: [string, raftmq.v1.SetClusterSettings.$Properties][] = [
    ["no machine version", { settings: { dedupWindow: 10 } }],
    ["a machine version newer than this code", { machineVersion: MACHINE_VERSION + 1, settings: {} }],
    ["a dedup window of 0", { machineVersion: 1, settings: { dedupWindow: 0 } }],
    ["a dedup window over 65536", { machineVersion: 1, settings: { dedupWindow: 65_537 } }],
    ["no producers remembered", { machineVersion: 1, settings: { maxProducers: 0 } }],
    ["producers forgotten within a second", { machineVersion: 1, settings: { producerIdleMs: 999 } }],
    ["messages over 32 MiB", { machineVersion: 1, settings: { maxMessageBytes: 32 * 1024 * 1024 + 1 } }],
    ["names longer than AMQP's shortstr", { machineVersion: 1, settings: { maxNameLength: 256 } }],
    ["a timer interval of 0", { machineVersion: 1, settings: { timerIntervalMs: 0 } }],
    ["an unsafe integer", { machineVersion: 1, settings: { maxBindings: 2 ** 53 } }],
  ];
  for (const [what, c] of cases) {
    it(`refuses ${what}`, () => {
      expect(validateCommand({ setClusterSettings: c }, defaultLimits)).toMatchObject({ code: "INVALID_ARGUMENT" });
    });
  }

  it("names the setting and its range", () => {
    expect(validateCommand(set({ maxQueues: 5, dedupWindow: 65_537 }), defaultLimits)?.message).toBe("cluster setting dedupWindow must be an integer in [1, 65536], got 65537");
  });

  it("accepts every setting at both ends of its range", () => {
    const low: Partial<BrokerLimits> = {};
    const high: Partial<BrokerLimits> = {};
    for (const key of Object.keys(defaultLimits) as (keyof BrokerLimits)[]) {
      low[key] = limitRanges[key].min;
      high[key] = limitRanges[key].max;
    }
    const d = new Driver();
    expect(d.ok(set(low)).result).toMatchObject({ settings: low });
    expect(d.ok(set(high)).result).toMatchObject({ settings: high });
  });

  it("a bad entry that reached the log anyway is answered with an error and changes nothing", () => {
    const d = new Driver();
    expect(d.run(set({ maxQueues: 5, dedupWindow: 0 })).result).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
    expect(d.run({ setClusterSettings: { settings: { maxQueues: 5 } } }).result).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
    expect(d.broker.settings()).toEqual(defaultLimits);
  });
});
