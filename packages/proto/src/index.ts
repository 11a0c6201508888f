// Message classes generated from proto/raftmq/v1 (static protobufjs code).
import "./long-as-number.ts";
import "./oneof-setter.ts";

export { google } from "../gen/google-rpc.js";
export { raftmq } from "../gen/raftmq.js";
export { lengthDelimitedHeader, lengthPrefix, ownBytes, Reader, Writer } from "./wire.ts";
export {
  type CallOutcome,
  decodeStatusDetails,
  ERROR_DOMAIN,
  type ErrorDetails,
  encodeStatusDetails,
  HEARTBEAT_METADATA_KEY,
  MAX_HEARTBEAT_MS,
  MIN_HEARTBEAT_MS,
  STATUS_DETAILS_METADATA_KEY,
  statusDetailsOf,
} from "./status-details.ts";
