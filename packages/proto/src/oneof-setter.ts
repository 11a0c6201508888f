// The generated decoders name a oneof's member after decoding it (message.kind = "publish"), and
// protobufjs's setter then deletes every other member's name from the message: one delete per
// member of the oneof (Command has dozens), each a call into the runtime, for every command and
// request decoded. Deleting only the members the message holds is the same (a delete of a name
// it does not hold changes nothing) and costs nothing for a fresh message. Like
// long-as-number.ts, this must run before the generated classes load.
import protobuf from "protobufjs/minimal.js";

const hasOwn = Object.prototype.hasOwnProperty;

protobuf.util.oneOfSetter = (fieldNames: string[]) =>
  function setOneOf(this: Record<string, unknown>, name: string | undefined): void {
    for (const f of fieldNames) if (f !== name && hasOwn.call(this, f)) delete this[f];
  };
