// 64-bit integers decode as plain numbers: terms, indexes, ids and timestamps stay far below
// 2^53, and numbers keep the hot paths free of Long objects. This must run before the
// generated classes load, because they build their zero defaults when they are defined.
import protobuf from "protobufjs/minimal.js";

protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();
