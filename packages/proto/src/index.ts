// Message classes generated from proto/raftmq/v1 (static protobufjs code).
// 64-bit integers decode as plain numbers: terms, indexes, ids and timestamps stay far below
// 2^53, and numbers keep the hot paths free of Long objects.
import protobuf from "protobufjs/minimal.js";

protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

export { raftmq } from "../gen/raftmq.js";
