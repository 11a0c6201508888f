// AMQP reply codes for what went wrong, with RabbitMQ's reply text style ("NOT_FOUND - no queue
// 'x' in vhost '/'"). Channel errors close the channel; connection errors close the connection.
import * as grpc from "@grpc/grpc-js";
import { statusDetailsOf } from "@raftmq/proto";
import type { CallStatus } from "../local-calls.ts";
import { CallStatusError } from "../local-calls.ts";

export const REPLY = {
  CONTENT_TOO_LARGE: 311,
  NO_ROUTE: 312,
  CONNECTION_FORCED: 320,
  INVALID_PATH: 402,
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
  FRAME_ERROR: 501,
  SYNTAX_ERROR: 502,
  COMMAND_INVALID: 503,
  CHANNEL_ERROR: 504,
  UNEXPECTED_FRAME: 505,
  RESOURCE_ERROR: 506,
  NOT_ALLOWED: 530,
  NOT_IMPLEMENTED: 540,
  INTERNAL_ERROR: 541,
} as const;

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(REPLY).map(([name, code]) => [code, name]));

/** Codes that close only the channel (the spec's soft errors). */
const CHANNEL_CODES = new Set<number>([REPLY.CONTENT_TOO_LARGE, REPLY.NO_ROUTE, REPLY.ACCESS_REFUSED, REPLY.NOT_FOUND, REPLY.RESOURCE_LOCKED, REPLY.PRECONDITION_FAILED]);

/** An AMQP error: `code` says whether it closes the channel or the connection. */
export class AmqpError extends Error {
  constructor(
    readonly code: number,
    text: string,
  ) {
    super(text);
  }

  get closesChannel(): boolean {
    return CHANNEL_CODES.has(this.code);
  }

  /** The reply text: the code's name, then what happened (at most 255 bytes on the wire). */
  get replyText(): string {
    const text = `${NAMES[this.code] ?? "ERROR"} - ${this.message}`;
    return Buffer.byteLength(text) <= 255 ? text : `${Buffer.from(text).subarray(0, 251).toString("utf8").replace(/\uFFFD$/, "")}...`;
  }
}

export const notFound = (text: string) => new AmqpError(REPLY.NOT_FOUND, text);
export const preconditionFailed = (text: string) => new AmqpError(REPLY.PRECONDITION_FAILED, text);
export const commandInvalid = (text: string) => new AmqpError(REPLY.COMMAND_INVALID, text);
export const notImplemented = (text: string) => new AmqpError(REPLY.NOT_IMPLEMENTED, text);
export const notAllowed = (text: string) => new AmqpError(REPLY.NOT_ALLOWED, text);

/** The AMQP error for a broker call that failed with `status`. */
export function amqpErrorOfStatus(status: CallStatus): AmqpError {
  const reason = statusDetailsOf(status.metadata)?.reason ?? "";
  const text = status.details;
  switch (status.code) {
    case grpc.status.NOT_FOUND:
      return new AmqpError(REPLY.NOT_FOUND, text);
    case grpc.status.PERMISSION_DENIED:
      return new AmqpError(REPLY.ACCESS_REFUSED, text);
    case grpc.status.UNAUTHENTICATED:
      return new AmqpError(REPLY.CONNECTION_FORCED, text);
    case grpc.status.FAILED_PRECONDITION:
      // Names starting with "amq." belong to the broker: RabbitMQ refuses them as access.
      if (/ is reserved: names starting with "amq\."/.test(text)) return new AmqpError(REPLY.ACCESS_REFUSED, text);
      // Another connection's exclusive queue, or a queue with an exclusive consumer.
      return new AmqpError(/\bexclusive\b|\blocked\b/i.test(text) ? REPLY.RESOURCE_LOCKED : REPLY.PRECONDITION_FAILED, text);
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.ALREADY_EXISTS:
    case grpc.status.OUT_OF_RANGE:
      return new AmqpError(REPLY.PRECONDITION_FAILED, text);
    case grpc.status.RESOURCE_EXHAUSTED:
      return new AmqpError(reason === "OVERLOADED" ? REPLY.RESOURCE_ERROR : REPLY.PRECONDITION_FAILED, text);
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
    case grpc.status.CANCELLED:
      return new AmqpError(REPLY.CONNECTION_FORCED, text);
    default:
      return new AmqpError(REPLY.INTERNAL_ERROR, text);
  }
}

/** Any failure of a broker call as an AMQP error. */
export function toAmqpError(err: unknown): AmqpError {
  if (err instanceof AmqpError) return err;
  if (err instanceof CallStatusError) return amqpErrorOfStatus(err.status);
  return new AmqpError(REPLY.INTERNAL_ERROR, err instanceof Error ? err.message : String(err));
}
