// Message classes generated from proto/raftmq/v1 (static protobufjs code).
import "./long-as-number.ts";

export { raftmq } from "../gen/raftmq.js";
export { lengthDelimitedHeader, lengthPrefix, ownBytes, Reader, Writer } from "./wire.ts";
