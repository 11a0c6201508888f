// One test per row of REQUEST_LIMITS: just under the limit is accepted, just over is refused with
// INVALID_ARGUMENT naming the field and the limit. Then the shapes reported in issue #16.
import { type BrokerLimits, type Command, defaultLimits, requestLimitKeys } from "@raftmq/broker";
import type { raftmq } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import { failure } from "./command-failure.ts";
import { CommandBuilder } from "../src/command-builder.ts";
import { messageBytes, REQUEST_LIMITS, requestLimitError } from "../src/request-limits.ts";

type Message = raftmq.v1.OutboundMessage.$Properties;
type Header = raftmq.v1.Header.$Properties;
type Death = raftmq.v1.Death.$Properties;

const b = new CommandBuilder();
const KiB = 1024;
const MiB = 1024 * KiB;


function refused(fn: () => unknown, message: RegExp): void {
  expect(failure(fn)).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(message) });
}

function publishOne(m: Message, builder = b): Command {
  const [c] = builder.publish({ messages: [m] });
  if (c === undefined) throw new Error("no command");
  return c;
}

const str = (key: string, value: string): Header => ({ key, value: { stringValue: value } });
const death = (d: Partial<Death> = {}): Death => ({ queue: "q", reason: "rejected", count: 1, exchange: "", routingKeys: ["q"], timeMs: 1, ...d });
const withLimits = (l: Partial<BrokerLimits>) => new CommandBuilder({ ...defaultLimits, ...l });

describe("the table", () => {
  it("holds every request limit once, as the front end's row of its cluster setting, and every row's default is the cluster default", () => {
    const names = REQUEST_LIMITS.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    for (const key of requestLimitKeys) {
      expect(REQUEST_LIMITS.find((r) => r.name === key)).toMatchObject({ default: defaultLimits[key], checkedBy: "front end", setting: key });
    }
    for (const r of REQUEST_LIMITS) if (r.setting !== undefined) expect(r.default, r.name).toBe(defaultLimits[r.setting]);
  });
});

describe("one test per row", () => {
  it("maxNameBytes (broker, cluster setting maxNameLength): 255 UTF-8 bytes", () => {
    expect(b.declareExchange({ name: "x".repeat(255), type: 1 }).declareExchange?.name).toHaveLength(255);
    refused(() => b.declareExchange({ name: "x".repeat(256), type: 1 }), /^exchange name ".*" is longer than 255 bytes$/);
    refused(() => b.declareQueue({ name: "é".repeat(128) }), /^queue name .* is longer than 255 bytes$/);
    refused(() => publishOne({ routingKey: "r".repeat(256) }), /^routing key .* is longer than 255 bytes$/);
    refused(() => publishOne({ routingKey: "q", properties: { headers: [str("k".repeat(256), "v")] } }), /^message headers key .* is longer than 255 bytes$/);
  });

  it("nameCharacters: no U+0000 to U+001F or U+007F in a name a request creates or stores", () => {
    const bad = "a\u0000b\u0007\n";
    const rule = /"a\\u0000b\\u0007\\n" must not contain control characters \(U\+0000 to U\+001F, U\+007F\): U\+0000 at position 1 \(rule nameCharacters\)$/;
    refused(() => b.declareExchange({ name: bad, type: 1 }), new RegExp(`^exchange name ${rule.source}`));
    refused(() => b.declareExchange({ name: "x", type: 1, alternateExchange: bad }), new RegExp(`^alternate exchange ${rule.source}`));
    refused(() => b.declareQueue({ name: bad }), new RegExp(`^queue name ${rule.source}`));
    refused(() => b.declareQueue({ name: "q", arguments: { deadLetterExchange: bad } }), new RegExp(`^x-dead-letter-exchange ${rule.source}`));
    refused(() => b.declareQueue({ name: "q", arguments: { deadLetterRoutingKey: bad } }), new RegExp(`^x-dead-letter-routing-key ${rule.source}`));
    refused(() => b.bind({ exchange: "x", queue: "q", routingKey: bad }), new RegExp(`^routing key ${rule.source}`));
    refused(() => b.subscribe("s", { queue: "q", consumerTag: bad }), new RegExp(`^consumer tag ${rule.source}`));
    refused(() => publishOne({ routingKey: "q", producerId: bad }), new RegExp(`^producer id ${rule.source}`));
    refused(() => b.declareQueue({ name: "del\u007f" }), /^queue name "del\\u007f" .*: U\+007F at position 3/);
    refused(() => b.declareQueue({ name: "tab\there" }), /U\+0009 at position 3/);

    // Just inside the rule: space, tilde, anything past U+007F.
    const fine = " ~é名😀\u0080";
    expect(b.declareExchange({ name: fine, type: 1 }).declareExchange?.name).toBe(fine);
    expect(b.declareQueue({ name: fine }).declareQueue?.name).toBe(fine);
    expect(b.subscribe("s", { queue: "q", consumerTag: fine }).subscribe?.consumerTag).toBe(fine);
    expect(publishOne({ routingKey: fine, producerId: fine }).publish?.producerId).toBe(fine);
  });

  it("nameCharacters is not applied to names that only refer, so what older versions made stays usable", () => {
    const old = "a\u0000b\u0007\n";
    expect(b.deleteExchange({ name: old }).deleteExchange?.name).toBe(old);
    expect(b.declareExchange({ name: old, passive: true }).declareExchange?.name).toBe(old);
    expect(b.declareQueue({ name: old, passive: true }).declareQueue?.name).toBe(old);
    expect(b.deleteQueue({ name: old }).deleteQueue?.name).toBe(old);
    expect(b.purgeQueue({ name: old }).purgeQueue?.name).toBe(old);
    expect(b.unbind({ exchange: old, queue: old, routingKey: old }).unbind?.routingKey).toBe(old);
    expect(b.bind({ exchange: old, queue: old, routingKey: "k" }).bind?.exchange).toBe(old);
    expect(publishOne({ exchange: old, routingKey: old }).publish?.exchange).toBe(old);
    expect(b.get({ queue: old }).get?.queue).toBe(old);
    expect(b.cancel("s", old).cancel?.consumerId).toBe(`s/${old}`);
  });

  it("maxAccessNameBytes (broker): a vhost name is at most 255 UTF-8 bytes, without control characters", () => {
    expect(b.declareQueue({ name: "q" }, "v".repeat(255)).declareQueue?.vhost).toHaveLength(255);
    refused(() => b.declareQueue({ name: "q" }, "v".repeat(256)), /^vhost "v+…" must be at most 255 UTF-8 bytes, got 256$/);
    refused(() => b.declareQueue({ name: "q" }, "v\u0000"), /^vhost "v\\u0000" must not contain control characters/);
  });

  it("maxMessagesPerPublish: 10000 messages in one request", () => {
    const n = defaultLimits.maxMessagesPerPublish;
    expect(b.publish({ messages: Array.from({ length: n }, () => ({ routingKey: "q" })) })).toHaveLength(n);
    expect(failure(() => b.publish({ messages: Array.from({ length: n + 1 }, () => ({ routingKey: "q" })) }))).toMatchObject({
      name: "InvalidRequestError",
      message: "a publish request carries 10001 messages; the limit is 10000 (maxMessagesPerPublish): split it",
    });
  });

  it("maxBodyBytes (broker, cluster setting maxMessageBytes): the body of one message", () => {
    const small = withLimits({ maxMessageBytes: 16 });
    expect(publishOne({ routingKey: "q", body: new Uint8Array(16) }, small).publish?.body).toHaveLength(16);
    refused(() => publishOne({ routingKey: "q", body: new Uint8Array(17) }, small), /^message body of 17 bytes exceeds the limit of 16 bytes$/);
  });

  it("maxPropertyStringBytes: each string property is at most 255 UTF-8 bytes", () => {
    const fields = [
      ["contentType", "content_type"],
      ["contentEncoding", "content_encoding"],
      ["correlationId", "correlation_id"],
      ["replyTo", "reply_to"],
      ["expiration", "expiration"],
      ["messageId", "message_id"],
      ["type", "type"],
      ["userId", "user_id"],
      ["appId", "app_id"],
    ] as const;
    const publish = (properties: raftmq.v1.MessageProperties.$Properties): Command => ({ publish: { routingKey: "q", properties } });
    for (const [key, field] of fields) {
      // Checked without the broker: a 255-digit expiration is in this limit but not a valid expiration.
      expect(requestLimitError(publish({ [key]: "x".repeat(255) }), defaultLimits), field).toBeNull();
      expect(requestLimitError(publish({ [key]: "€".repeat(85) }), defaultLimits), field).toBeNull();
      expect(requestLimitError(publish({ [key]: "x".repeat(256) }), defaultLimits)?.message).toBe(
        `properties.${field} is 256 UTF-8 bytes; the limit is 255 (maxPropertyStringBytes)`,
      );
      expect(requestLimitError(publish({ [key]: "€".repeat(86) }), defaultLimits)?.message).toBe(
        `properties.${field} is 258 UTF-8 bytes; the limit is 255 (maxPropertyStringBytes)`,
      );
    }
    expect(publishOne({ routingKey: "q", properties: { messageId: "m".repeat(255), appId: "é".repeat(127) } }).publish?.properties?.messageId).toHaveLength(255);
    refused(() => publishOne({ routingKey: "q", properties: { appId: "é".repeat(128) } }), /^properties\.app_id is 256 UTF-8 bytes; the limit is 255 \(maxPropertyStringBytes\)$/);
  });

  it("maxPropertyStringBytes also bounds each string of a published death entry", () => {
    const at = (d: Partial<Death>) => () => publishOne({ routingKey: "q", properties: { deaths: [death(), death(d)] } });
    expect(at({ queue: "q".repeat(255), exchange: "x".repeat(255), reason: "r".repeat(255), originalExpiration: "1".repeat(255), routingKeys: ["k".repeat(255)] })()).toBeDefined();
    refused(at({ queue: "q".repeat(256) }), /^properties\.deaths\[1\]\.queue is 256 UTF-8 bytes; the limit is 255 \(maxPropertyStringBytes\)$/);
    refused(at({ reason: "r".repeat(256) }), /^properties\.deaths\[1\]\.reason is 256/);
    refused(at({ exchange: "x".repeat(256) }), /^properties\.deaths\[1\]\.exchange is 256/);
    refused(at({ originalExpiration: "1".repeat(256) }), /^properties\.deaths\[1\]\.original_expiration is 256/);
    refused(at({ routingKeys: ["a", "k".repeat(256)] }), /^properties\.deaths\[1\]\.routing_keys\[1\] is 256/);
  });

  it("maxHeaders (broker, cluster setting maxHeaders): headers of a message, arguments of a binding or subscription", () => {
    const headers = (n: number) => Array.from({ length: n }, (_, i) => str(`h${i}`, "v"));
    expect(publishOne({ routingKey: "q", properties: { headers: headers(64) } }).publish?.properties?.headers).toHaveLength(64);
    refused(() => publishOne({ routingKey: "q", properties: { headers: headers(65) } }), /^message headers has 65 entries; the limit is 64$/);
    expect(b.bind({ exchange: "x", queue: "q", arguments: headers(64) }).bind?.arguments).toHaveLength(64);
    refused(() => b.bind({ exchange: "x", queue: "q", arguments: headers(65) }), /^binding arguments has 65 entries; the limit is 64$/);
    refused(() => b.subscribe("s", { queue: "q", consumerTag: "t", arguments: headers(65) }), /^consumer arguments has 65 entries; the limit is 64$/);
  });

  it("maxHeaderValueBytes: one header or argument value is at most 64 KiB", () => {
    const limit = 64 * KiB;
    expect(publishOne({ routingKey: "q", properties: { headers: [str("a", "v".repeat(limit)), { key: "b", value: { bytesValue: new Uint8Array(limit) } }] } })).toBeDefined();
    refused(
      () => publishOne({ routingKey: "q", properties: { headers: [str("a", "v"), str("big", "v".repeat(limit + 1))] } }),
      /^properties\.headers\[1\] "big" value is 65537 bytes; the limit is 65536 \(maxHeaderValueBytes\)$/,
    );
    refused(() => publishOne({ routingKey: "q", properties: { headers: [{ key: "b", value: { bytesValue: new Uint8Array(limit + 1) } }] } }), /^properties\.headers\[0\] "b" value is 65537 bytes/);
    refused(() => publishOne({ routingKey: "q", properties: { headers: [str("é", "é".repeat(limit / 2 + 1))] } }), /value is 65538 bytes; the limit is 65536 \(maxHeaderValueBytes\)/);
    refused(() => b.bind({ exchange: "x", queue: "q", arguments: [str("k", "v".repeat(limit + 1))] }), /^binding arguments\[0\] "k" value is 65537 bytes; the limit is 65536 \(maxHeaderValueBytes\)$/);
    refused(() => b.subscribe("s", { queue: "q", consumerTag: "t", arguments: [str("k", "v".repeat(limit + 1))] }), /^consumer arguments\[0\] "k" value is 65537 bytes/);
  });

  it("maxArgumentsBytes: a binding's or a subscription's arguments are at most 4 KiB together", () => {
    const args = (valueBytes: number) => [str("k", "v".repeat(valueBytes - 2)), { key: "n", value: { intValue: 7 } }]; // keys 2 + int 8
    const limit = 4 * KiB;
    expect(b.bind({ exchange: "x", queue: "q", arguments: args(limit - 8) }).bind?.arguments).toHaveLength(2);
    expect(b.subscribe("s", { queue: "q", consumerTag: "t", arguments: args(limit - 8) }).subscribe?.arguments).toHaveLength(2);
    refused(() => b.bind({ exchange: "x", queue: "q", arguments: args(limit - 7) }), /^binding arguments are 4097 bytes in all; the limit is 4096 \(maxArgumentsBytes\)$/);
    refused(() => b.subscribe("s", { queue: "q", consumerTag: "t", arguments: args(limit - 7) }), /^consumer arguments are 4097 bytes in all; the limit is 4096 \(maxArgumentsBytes\)$/);
  });

  it("messageOverheadBytes: body, properties, headers and deaths together are at most maxMessageBytes in force + 64 KiB", () => {
    const small = withLimits({ maxMessageBytes: 16 });
    const limit = 16 + 64 * KiB;
    // routing key 1 + body 16 + key 1 + value, and a second header so no one value passes its own limit.
    const message = (total: number): Message => {
      const rest = total - 1 - 16 - 2;
      return { routingKey: "q", body: new Uint8Array(16), properties: { headers: [str("a", "v".repeat(rest - 1000)), str("b", "v".repeat(1000))] } };
    };
    expect(messageBytes(message(limit))).toBe(limit);
    expect(publishOne(message(limit), small)).toBeDefined();
    refused(() => publishOne(message(limit + 1), small), /^the message is 65553 bytes in all \(body, properties, headers and deaths\); the limit is 65552 \(maxMessageBytes in force \+ messageOverheadBytes\)$/);
  });

  it("messageOverheadBytes follows the cluster's maxMessageBytes as it changes", () => {
    let limits = { ...defaultLimits, maxMessageBytes: 1 };
    const inForce = new CommandBuilder(() => limits);
    const m: Message = { routingKey: "q", properties: { headers: [str("a", "v".repeat(60 * KiB)), str("b", "v".repeat(10 * KiB))] } };
    refused(() => publishOne(m, inForce), /the limit is 65537 \(maxMessageBytes in force \+ messageOverheadBytes\)$/);
    limits = { ...limits, maxMessageBytes: 16 * KiB };
    expect(publishOne(m, inForce)).toBeDefined();
  });

  it("maxDeaths: a client publishes at most 64 death entries", () => {
    const deaths = (n: number) => Array.from({ length: n }, (_, i) => death({ queue: `q${i}` }));
    expect(publishOne({ routingKey: "q", properties: { deaths: deaths(64) } }).publish?.properties?.deaths).toHaveLength(64);
    refused(() => publishOne({ routingKey: "q", properties: { deaths: deaths(65) } }), /^properties\.deaths has 65 entries; the limit is 64 \(maxDeaths\)$/);
  });

  it("maxDeathRoutingKeys: a published death entry has at most 64 routing keys", () => {
    const keys = (n: number) => Array.from({ length: n }, (_, i) => `k${i}`);
    expect(publishOne({ routingKey: "q", properties: { deaths: [death({ routingKeys: keys(64) })] } })).toBeDefined();
    refused(() => publishOne({ routingKey: "q", properties: { deaths: [death({ routingKeys: keys(65) })] } }), /^properties\.deaths\[0\]\.routing_keys has 65 entries; the limit is 64 \(maxDeathRoutingKeys\)$/);
  });
});

describe("issue #16, as found from outside", () => {
  it("refuses 63 header values of 0.9 MiB (57 MiB in all) by the first value, before validateCommand or a proposal", () => {
    const value = "v".repeat(Math.floor(0.9 * MiB));
    const headers = Array.from({ length: 63 }, (_, i) => str(`h${i}`, value));
    refused(() => b.publish({ messages: [{ routingKey: "q", properties: { headers } }] }), /^properties\.headers\[0\] "h0" value is 943718 bytes; the limit is 65536 \(maxHeaderValueBytes\)$/);
    // With a looser value limit the whole-message bound still holds.
    const loose = withLimits({ maxHeaderValueBytes: MiB });
    refused(() => loose.publish({ messages: [{ routingKey: "q", properties: { headers } }] }), /^the message is \d+ bytes in all .*the limit is 16842752 \(maxMessageBytes in force \+ messageOverheadBytes\)$/);
  });

  it("refuses a 20 MiB message_id, which the body limit never saw", () => {
    refused(() => b.publish({ messages: [{ routingKey: "q", properties: { messageId: "m".repeat(20 * MiB) } }] }), /^properties\.message_id is 20971520 UTF-8 bytes; the limit is 255 \(maxPropertyStringBytes\)$/);
  });

  it("refuses 100,000 forged x-death entries", () => {
    const deaths = Array.from({ length: 100_000 }, () => death());
    refused(() => b.publish({ messages: [{ routingKey: "q", properties: { deaths } }] }), /^properties\.deaths has 100000 entries; the limit is 64 \(maxDeaths\)$/);
  });

  it('refuses "a\\u0000b\\u0007\\n" as an exchange name', () => {
    refused(() => b.declareExchange({ name: "a\u0000b\u0007\n", type: 1 }), /^exchange name "a\\u0000b\\u0007\\n" must not contain control characters .*U\+0000 at position 1/);
  });
});
