// Requests for every RPC of Broker, Cluster and Access, built field by field from the generated
// types of the .proto messages with the extremes of each field's type, and the byte-level damage no
// typed encoder makes. rpc-fuzz.test.ts sends them to a real cluster.
import fc from "fast-check";
import type { raftmq } from "@raftmq/proto";
import { accessServiceDefinition, brokerServiceDefinition, clusterServiceDefinition } from "@raftmq/server";
import { ADMIN_USER } from "./cluster-harness.ts";

export const KiB = 1024;
export const MiB = 1024 * KiB;

export const SERVICES = { Broker: brokerServiceDefinition, Cluster: clusterServiceDefinition, Access: accessServiceDefinition } as const;
export type ServiceName = keyof typeof SERVICES;

/** A vhost the fuzzed cluster has besides "/". */
export const FUZZ_VHOST = "fuzz-vh";
/** The user without tags whose calls are checked against its permissions. */
export const FUZZ_USER = "fuzz-user";
/** Names that exist in the fuzzed cluster (the last queue only sometimes). */
export const QUEUES = ["fuzz-q1", "fuzz-q2", "amq.gen-fuzz"];
const EXCHANGES = ["", "fuzz.x", "fuzz.fan", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"];

/**
 * An arbitrary for every field of message P, as the generated types list them: a field added to
 * the .proto does not compile until it is fuzzed here. Each field may be absent.
 */
type Fields<P> = { readonly [K in Exclude<keyof P, "$unknowns">]-?: fc.Arbitrary<NonNullable<P[K]>> };

function message<P>(fields: Fields<P>): fc.Arbitrary<P> {
  return fc.record(fields as Record<string, fc.Arbitrary<unknown>>, { requiredKeys: [] }) as fc.Arbitrary<P>;
}

/** A record whose keys may each be absent, for requests narrowed on purpose (the Consume sessions). */
export function partial<T extends Record<string, fc.Arbitrary<unknown>>>(fields: T) {
  return fc.record(fields, { requiredKeys: [] });
}

/** A oneof: no member, one, or two at once (the encoder writes both; the decoder keeps the later). */
function oneof<P>(members: Fields<P>): fc.Arbitrary<P> {
  const all = members as Record<string, fc.Arbitrary<unknown>>;
  const keys = Object.keys(all);
  const pick = (ks: readonly string[]) => fc.record(Object.fromEntries(ks.map((k) => [k, all[k] ?? fc.constant(null)])));
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant({}) },
    { weight: 8, arbitrary: fc.constantFrom(...keys).chain((k) => pick([k])) },
    { weight: 1, arbitrary: fc.uniqueArray(fc.constantFrom(...keys), { minLength: 2, maxLength: 2 }).chain(pick) },
  ) as fc.Arbitrary<P>;
}

/** Arrays of each of `counts` items, made at once: fast-check would be slow to build and shrink thousands of random ones. */
function many<T>(counts: readonly number[], item: (i: number) => T): fc.Arbitrary<T[]> {
  return fc.constantFrom(...counts).map((n) => Array.from({ length: n }, (_, i) => item(i)));
}

/**
 * A valid code point that damagedBytes swaps for invalid UTF-8 of the same length (its UTF-8
 * bytes are F4 8F BF BF), so a string anywhere in a request, however nested, can arrive as such.
 */
const UTF8_MARK = "\u{10FFFF}";
const UTF8_MARK_BYTES = [0xf4, 0x8f, 0xbf, 0xbf] as const;
const INVALID_UTF8 = [
  [0xff, 0xfe, 0xff, 0xfe], // never in UTF-8
  [0xc0, 0x80, 0xc0, 0x80], // overlong NULs
  [0xed, 0xa0, 0x80, 0x41], // a UTF-16 surrogate, then "A"
  [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
  [0x80, 0xbf, 0x80, 0xbf], // continuation bytes alone
  [0xe2, 0x82, 0x41, 0x41], // a sequence cut short
] as const;

/** Byte lengths around the front end's bounds: names and property strings 255, header values 64 KiB. */
const BOUNDARY_TEXT = [
  "x".repeat(255),
  "x".repeat(256),
  `${"é".repeat(127)}x`, // 255 bytes in 128 characters
  "é".repeat(128), // 256 bytes in 128 characters
  "😀".repeat(64), // 256 bytes in 128 UTF-16 units
  "x".repeat(4 * KiB + 1),
  "x".repeat(64 * KiB),
  "x".repeat(64 * KiB + 1),
  "\u0000".repeat(4 * KiB),
];
/** Past any bound, rarely: they cost every node a copy. */
const HUGE_TEXT = ["x".repeat(300 * KiB), "é".repeat(200 * KiB)];
const ODD_TEXT = [
  "",
  " ",
  "/",
  "amq.default",
  "amq.direct",
  "amq.gen-x",
  ".*",
  "^$",
  "(a+)+$",
  "[",
  "\\",
  "#",
  "*.#",
  "..",
  "a\u0000b",
  "\u007f",
  "\u0085", // NEL: a C1 control, which the name rule allows
  "\u202e", // right-to-left override
  "\ufeff",
  "\ufffe",
  UTF8_MARK,
  "e\u0301",
  "名前",
  "😀",
  "\ud800", // a lone surrogate: encodes as invalid UTF-8
  "\udfff",
  "%2F",
  "__proto__",
  "constructor",
  "hasOwnProperty",
  "../../etc/passwd",
];

export const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });
const controls = fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 8 });
const text = fc.oneof(
  { weight: 20, arbitrary: fc.constantFrom(...ODD_TEXT) },
  { weight: 20, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 20, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 15, arbitrary: fc.tuple(printable, controls, printable).map(([a, b, c]) => a + b + c) },
  { weight: 10, arbitrary: fc.string({ minLength: 250, maxLength: 2_000 }) },
  { weight: 8, arbitrary: fc.constantFrom(...BOUNDARY_TEXT) },
  { weight: 1, arbitrary: fc.constantFrom(...HUGE_TEXT) },
);
/** Names that exist in the fuzzed cluster half the time, anything otherwise. */
const queueName = fc.oneof(fc.constantFrom(...QUEUES), text);
const exchangeName = fc.oneof(fc.constantFrom(...EXCHANGES), text);
const userName = fc.oneof(fc.constantFrom(ADMIN_USER, FUZZ_USER, "guest", "", "nobody"), text);
const vhostName = fc.oneof(fc.constantFrom("/", "", FUZZ_VHOST, "no-such-vhost"), text);
const pattern = fc.oneof(fc.constantFrom("", ".*", "^fuzz", "(", "(a+)+$", "^amq\\.", "\\"), text);
// Numbers past each type's range and not integers at all: the encoder wraps or truncates them as
// any client's might, so the node sees the largest values and negatives as two's complement.
export const u32 = fc.oneof(fc.constantFrom(0, 1, 255, 256, 0x7fffffff, 0x80000000, 0xffffffff, -1, 2 ** 32, 1.5, Number.NaN), fc.nat({ max: 0xffffffff }));
export const u64 = fc.oneof(fc.constantFrom(0, 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 63, 2 ** 64 - 2048, -1, 0.5, Number.POSITIVE_INFINITY), fc.maxSafeNat());
const i64 = fc.oneof(fc.constantFrom(0, -1, 1, -(2 ** 53 - 1), 2 ** 53 - 1, 2 ** 32, 2 ** 63, -(2 ** 63), 0.5, Number.NaN), fc.maxSafeInteger());
/** proto3 enums are open: any int32 may arrive. */
const enumValue = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom(-1, 99, 2 ** 31 - 1, -(2 ** 31)));
const bytes = fc.oneof(
  { weight: 12, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 6, arbitrary: fc.uint8Array({ minLength: 1_000, maxLength: 8_000 }) },
  // At and past the cluster's maxMessageBytes (16 MiB).
  { weight: 1, arbitrary: fc.constantFrom(MiB, 16 * MiB, 16 * MiB + 1).map((n) => new Uint8Array(n)) },
);
const sessionId = fc.oneof(fc.constant(""), text);
const boolean = fc.boolean();

const headerValue = oneof<Omit<raftmq.v1.HeaderValue.$Properties, "value" | "amqpType">>({
  stringValue: text,
  intValue: i64,
  boolValue: boolean,
  doubleValue: fc.double(),
  bytesValue: fc.oneof(fc.uint8Array({ maxLength: 32 }), fc.constantFrom(64 * KiB, 64 * KiB + 1).map((n) => new Uint8Array(n))),
  amqpField: fc.uint8Array({ maxLength: 32 }),
});
const header = message<raftmq.v1.Header.$Properties>({ key: fc.oneof(fc.constantFrom("x-match", "x-death", "x-delay"), text), value: headerValue });
/** Around the cluster's maxHeaders (64), and far past it. */
const headers = fc.oneof(
  { weight: 12, arbitrary: fc.array(header, { maxLength: 5 }) },
  { weight: 1, arbitrary: many([64, 65, 5_000], (i) => ({ key: `h${i}`, value: { intValue: i } })) },
);
const queueArguments = message<raftmq.v1.QueueArguments.$Properties>({
  messageTtlMs: i64,
  expiresMs: i64,
  maxLength: i64,
  maxLengthBytes: i64,
  overflow: enumValue,
  deadLetterExchange: exchangeName,
  deadLetterRoutingKey: text,
  deliveryLimit: i64,
  singleActiveConsumer: boolean,
  queueType: fc.oneof(fc.constantFrom("", "quorum", "classic", "stream"), text),
});
/** Around maxDeathRoutingKeys and maxDeaths (64 each). */
const deathKeys = fc.oneof({ weight: 12, arbitrary: fc.array(text, { maxLength: 3 }) }, { weight: 1, arbitrary: many([64, 65], (i) => `k${i}`) });
const death = message<raftmq.v1.Death.$Properties>({
  queue: queueName,
  reason: text,
  count: u64,
  exchange: exchangeName,
  routingKeys: deathKeys,
  timeMs: u64,
  originalExpiration: text,
});
const deaths = fc.oneof({ weight: 12, arbitrary: fc.array(death, { maxLength: 3 }) }, { weight: 1, arbitrary: many([64, 65], (i) => ({ queue: "fuzz-q1", reason: "rejected", count: i })) });
const properties = message<raftmq.v1.MessageProperties.$Properties>({
  contentType: text,
  contentEncoding: text,
  headers,
  deliveryMode: u32,
  priority: u32,
  correlationId: text,
  replyTo: text,
  expiration: fc.oneof(fc.constantFrom("", "0", "-1", "1.5", "99999999999999999999", "1e3", "4294967296"), text),
  messageId: text,
  timestamp: u64,
  type: text,
  userId: fc.oneof(fc.constantFrom("", ADMIN_USER, FUZZ_USER), text),
  appId: text,
  deaths,
});
const outbound = message<raftmq.v1.OutboundMessage.$Properties>({
  exchange: exchangeName,
  routingKey: fc.oneof(queueName, text),
  mandatory: boolean,
  properties,
  body: bytes,
  producerId: text,
  sequence: u64,
  retry: boolean,
});
/** Around maxMessagesPerPublish (10,000): empty messages, so the request stays small. */
const outbounds = fc.oneof({ weight: 15, arbitrary: fc.array(outbound, { maxLength: 6 }) }, { weight: 1, arbitrary: many([10_000, 10_001], () => ({})) });
const publishRequest = message<raftmq.v1.PublishRequest.$Properties>({ messages: outbounds, clientSequence: u64 });
const settlement = message<raftmq.v1.Settlement.$Properties>({ consumerTag: text, deliveryTag: u64, multiple: boolean, requeue: boolean });
const permissions = message<raftmq.v1.Permissions.$Properties>({ user: userName, vhost: vhostName, configure: pattern, write: pattern, read: pattern });
const address = fc.oneof(fc.constantFrom("127.0.0.1:1", "host:99999", ":1", "[::1]:5", "a:b"), text);
/** Around a user's tag limits (32 tags of 1 to 64 bytes). */
const tags = fc.oneof(
  { weight: 12, arbitrary: fc.array(fc.oneof(fc.constantFrom("administrator", "monitoring", "", "x".repeat(65)), text), { maxLength: 40 }) },
  { weight: 1, arbitrary: many([32, 33, 10_000], (i) => `t${i}`) },
);
const password = fc.oneof(text, fc.string({ minLength: 1_000, maxLength: 1_100 }));
const subscription = message<raftmq.v1.Subscription.$Properties>({ queue: queueName, prefetch: u32, noAck: boolean, exclusive: boolean, consumerTag: text, arguments: headers, batchDeliveries: boolean });
const setPrefetch = message<raftmq.v1.SetPrefetchRequest.$Properties>({ consumerTag: text, prefetch: u32 });

type Arbitraries<D> = { readonly [M in keyof D]: fc.Arbitrary<object> };

/** Typed by the service definitions: a new RPC does not compile until it has an arbitrary here. */
export const REQUESTS: { readonly [S in ServiceName]: Arbitraries<(typeof SERVICES)[S]> } = {
  Broker: {
    DeclareExchange: message<raftmq.v1.DeclareExchangeRequest.$Properties>({
      name: exchangeName,
      type: enumValue,
      durable: boolean,
      autoDelete: boolean,
      internal: boolean,
      alternateExchange: exchangeName,
      passive: boolean,
    }),
    DeleteExchange: message<raftmq.v1.DeleteExchangeRequest.$Properties>({ name: exchangeName, ifUnused: boolean }),
    DeclareQueue: message<raftmq.v1.DeclareQueueRequest.$Properties>({
      name: queueName,
      durable: boolean,
      exclusive: boolean,
      sessionId,
      autoDelete: boolean,
      arguments: queueArguments,
      passive: boolean,
    }),
    DeleteQueue: message<raftmq.v1.DeleteQueueRequest.$Properties>({ name: queueName, ifUnused: boolean, ifEmpty: boolean, sessionId }),
    PurgeQueue: message<raftmq.v1.PurgeQueueRequest.$Properties>({ name: queueName, sessionId }),
    Bind: message<raftmq.v1.BindRequest.$Properties>({ exchange: exchangeName, queue: queueName, routingKey: text, arguments: headers, sessionId, destinationExchange: exchangeName }),
    Unbind: message<raftmq.v1.UnbindRequest.$Properties>({ exchange: exchangeName, queue: queueName, routingKey: text, arguments: headers, sessionId, destinationExchange: exchangeName }),
    Publish: publishRequest,
    PublishStream: publishRequest,
    Consume: oneof<Omit<raftmq.v1.ConsumeRequest.$Properties, "kind">>({ subscribe: subscription, cancel: text, ack: settlement, nack: settlement, reject: settlement, setPrefetch }),
    Get: message<raftmq.v1.GetRequest.$Properties>({ queue: queueName }),
    QueueInfo: message<raftmq.v1.QueueInfoRequest.$Properties>({ name: queueName }),
    ListQueues: message<raftmq.v1.ListQueuesRequest.$Properties>({}),
    ListExchanges: message<raftmq.v1.ListExchangesRequest.$Properties>({}),
    ListBindings: message<raftmq.v1.ListBindingsRequest.$Properties>({ exchange: exchangeName, queue: queueName, destinationExchange: exchangeName }),
  },
  Cluster: {
    Status: message<raftmq.v1.StatusRequest.$Properties>({}),
    AddMember: message<raftmq.v1.AddMemberRequest.$Properties>({ id: u64, peerAddress: address, clientAddress: address }),
    RemoveMember: message<raftmq.v1.RemoveMemberRequest.$Properties>({ id: u64 }),
    TransferLeadership: message<raftmq.v1.TransferLeadershipRequest.$Properties>({ to: u64 }),
    TriggerSnapshot: message<raftmq.v1.TriggerSnapshotRequest.$Properties>({}),
    SetSettings: message<raftmq.v1.SetSettingsRequest.$Properties>({
      machineVersion: u32,
      settings: message<raftmq.v1.ClusterSettings.$Properties>({
        dedupWindow: u32,
        maxProducers: u32,
        producerIdleMs: u64,
        maxMessageBytes: u64,
        maxQueues: u32,
        maxExchanges: u32,
        maxBindings: u32,
        maxHeaders: u32,
        maxNameLength: u32,
        maxConsumersPerQueue: u32,
        maxUnackedPerConsumer: u32,
        maxNoAckDeliveriesPerApply: u32,
        timerIntervalMs: u64,
        maxMessagesPerPublish: u32,
        maxPropertyStringBytes: u32,
        maxHeaderValueBytes: u32,
        maxArgumentsBytes: u32,
        messageOverheadBytes: u32,
        maxDeaths: u32,
        maxDeathRoutingKeys: u32,
      }),
    }),
  },
  Access: {
    AddUser: message<raftmq.v1.AddUserRequest.$Properties>({ name: userName, password, tags }),
    DeleteUser: message<raftmq.v1.DeleteUserRequest.$Properties>({ name: userName }),
    ChangePassword: message<raftmq.v1.ChangePasswordRequest.$Properties>({ name: userName, password }),
    SetUserTags: message<raftmq.v1.SetUserTagsRequest.$Properties>({ name: userName, tags }),
    ListUsers: message<raftmq.v1.ListUsersRequest.$Properties>({}),
    AddVhost: message<raftmq.v1.AddVhostRequest.$Properties>({ name: vhostName }),
    DeleteVhost: message<raftmq.v1.DeleteVhostRequest.$Properties>({ name: vhostName }),
    ListVhosts: message<raftmq.v1.ListVhostsRequest.$Properties>({}),
    SetPermissions: message<raftmq.v1.SetPermissionsRequest.$Properties>({ permissions }),
    ClearPermissions: message<raftmq.v1.ClearPermissionsRequest.$Properties>({ user: userName, vhost: vhostName }),
    ListPermissions: message<raftmq.v1.ListPermissionsRequest.$Properties>({ user: userName, vhost: vhostName }),
    WhoAmI: message<raftmq.v1.WhoAmIRequest.$Properties>({}),
  },
};

// ---- bytes no typed encoder writes ----

/** A protobuf varint, for numbers past 2^31 too. */
function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** A value of each wire type as no encoder writes it; for a length-delimited field, strings that are not UTF-8 too. */
const wireValue: fc.Arbitrary<[number, number[]]> = fc.oneof(
  fc.constantFrom<[number, number[]]>(
    [WIRE_VARINT, [...Array(9).fill(0xff), 0x01]], // 2^64 - 1, which is -1 as an int64
    [WIRE_VARINT, [...Array(10).fill(0xff), 0x01]], // 11 bytes: longer than any varint
    [WIRE_VARINT, [0x80, 0x80, 0x80, 0x80, 0x08]], // 2^31: past int32 and enums
    [WIRE_FIXED64, Array(8).fill(0xff)],
    [WIRE_FIXED32, [0xff, 0xff, 0xff, 0x7f]],
    [WIRE_LEN, [...varint(2 ** 31), 0x41]], // a length far past the end
    [WIRE_LEN, [0x05, 0x41]], // a length just past the end
    [3, []], // a group start without its end
    [4, []], // a group end without its start
    [6, [0x00]], // wire types 6 and 7 do not exist
    [7, [0x00]],
  ),
  fc.constantFrom(...INVALID_UTF8).map((b): [number, number[]] => [WIRE_LEN, [b.length, ...b]]),
  fc.uint8Array({ maxLength: 16 }).map((b): [number, number[]] => [WIRE_LEN, [b.length, ...b]]),
);
/** Fields 1 to 16 cover every field of every request message; 0 and 2^29 - 1 are the bounds of field numbers. */
const wireField = fc
  .tuple(fc.oneof(fc.integer({ min: 1, max: 16 }), fc.constantFrom(0, 19_000, 2 ** 29 - 1)), wireValue)
  .map(([field, [wireType, value]]) => [...varint(field * 8 + wireType), ...value]);

function concat(b: Uint8Array, tail: readonly number[]): Uint8Array {
  return new Uint8Array(Buffer.concat([b, Uint8Array.from(tail)]));
}

/**
 * `b` with every UTF8_MARK in it replaced by `invalid`, so a string however nested arrives as
 * invalid UTF-8; without a mark, `invalid` is appended as string field `field`, which a decoder
 * takes as that field's last value.
 */
function withInvalidUtf8(b: Uint8Array, invalid: readonly number[], field: number): Uint8Array {
  const out = b.slice();
  let marks = 0;
  for (let i = 0; i + 3 < out.length; i++) {
    if (UTF8_MARK_BYTES.every((x, k) => out[i + k] === x)) {
      out.set(invalid, i);
      marks++;
    }
  }
  return marks > 0 ? out : concat(b, [...varint(field * 8 + WIRE_LEN), invalid.length, ...invalid]);
}

/**
 * Bytes for a method whose valid encodings `valid` makes: random bytes; a valid encoding cut
 * short or with a byte flipped; with its strings made invalid UTF-8; or with fields of any number
 * and wire type appended.
 */
export function damagedBytes(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const damaged = fc.tuple(valid, fc.nat(), fc.nat({ max: 255 }), fc.boolean()).map(([b, at, value, cut]) => {
    if (b.byteLength === 0) return b;
    const i = at % b.byteLength;
    if (cut) return b.slice(0, i);
    const copy = b.slice();
    copy[i] = value;
    return copy;
  });
  const notUtf8 = fc.tuple(valid, fc.constantFrom(...INVALID_UTF8), fc.integer({ min: 1, max: 8 })).map(([b, invalid, field]) => withInvalidUtf8(b, invalid, field));
  const appended = fc.tuple(valid, fc.array(wireField, { minLength: 1, maxLength: 3 })).map(([b, fields]) => concat(b, fields.flat()));
  return fc.oneof(fc.uint8Array({ maxLength: 300 }), damaged, notUtf8, appended);
}
