// @raftmq/amqp: the AMQP 0-9-1 wire codec. Constants, method descriptors and method types are
// generated from spec/amqp0-9-1.extended.xml into gen/spec.ts; the codec in src/ walks them.
export * from "../gen/spec.ts";
export { type ContentHeader, decodeContentHeader, encodeBodyFrames, encodeContentHeader } from "./content.ts";
export { AmqpCodecError, type AmqpCodecErrorCode } from "./errors.ts";
export {
  type Decimal,
  decodeFieldTable,
  decodeFieldValue,
  encodeFieldTable,
  encodeFieldValue,
  type FieldTable,
  type FieldTag,
  type FieldValue,
  fromFieldTable,
  fromFieldValue,
  MAX_FIELD_NESTING,
  type PlainFieldValue,
  toFieldTable,
  toFieldValue,
} from "./field-table.ts";
export { type Frame, FrameReader, type FrameReaderOptions } from "./frame-reader.ts";
export { encodeFrame, FRAME_OVERHEAD, heartbeatFrame } from "./frames.ts";
export {
  type DecodedMethod,
  decodeMethod,
  encodeMethod,
  methodDescriptor,
  methodDescriptorById,
} from "./method-codec.ts";
export {
  PROTOCOL_HEADER,
  PROTOCOL_HEADER_SIZE,
  type ProtocolHeaderResult,
  readProtocolHeader,
} from "./protocol-header.ts";
