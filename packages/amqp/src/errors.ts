// The one error the codec throws on bad input. Its code is the AMQP reply code the server closes
// the connection with; every code here is a hard error.
import { COMMAND_INVALID, FRAME_ERROR, NOT_IMPLEMENTED, SYNTAX_ERROR, UNEXPECTED_FRAME } from "../gen/spec.ts";

export type AmqpCodecErrorCode =
  | typeof FRAME_ERROR
  | typeof SYNTAX_ERROR
  | typeof COMMAND_INVALID
  | typeof UNEXPECTED_FRAME
  | typeof NOT_IMPLEMENTED;

const CODE_NAMES: Record<AmqpCodecErrorCode, string> = {
  [FRAME_ERROR]: "FRAME_ERROR",
  [SYNTAX_ERROR]: "SYNTAX_ERROR",
  [COMMAND_INVALID]: "COMMAND_INVALID",
  [UNEXPECTED_FRAME]: "UNEXPECTED_FRAME",
  [NOT_IMPLEMENTED]: "NOT_IMPLEMENTED",
};

/** A reply-text is a shortstr: at most 255 bytes of UTF-8. */
const MAX_REPLY_TEXT_BYTES = 255;

export class AmqpCodecError extends Error {
  constructor(
    readonly code: AmqpCodecErrorCode,
    readonly detail: string,
    /** The method being decoded or encoded, when known; connection.close reports them. */
    readonly classId = 0,
    readonly methodId = 0,
  ) {
    super(`${CODE_NAMES[code]} - ${detail}`);
    this.name = "AmqpCodecError";
  }

  /** The message cut to fit connection.close's reply-text, in RabbitMQ's "NAME - detail" form. */
  get replyText(): string {
    const text = this.message;
    if (Buffer.byteLength(text) <= MAX_REPLY_TEXT_BYTES) return text;
    const cut = Buffer.from(text).subarray(0, MAX_REPLY_TEXT_BYTES).toString();
    // A multi-byte character cut in half decodes to U+FFFD, three bytes: drop it.
    return cut.endsWith("\uFFFD") ? cut.slice(0, -1) : cut;
  }
}
