// Bounds the metadata (the HTTP/2 header list) one call may carry. grpc-js 1.14 has no server
// option for it, so this sets SETTINGS_MAX_HEADER_LIST_SIZE in the options grpc-js builds its
// http2 servers from. Node then refuses a larger header block with RST_STREAM ENHANCE_YOUR_CALM,
// which grpc-js clients report as RESOURCE_EXHAUSTED; no gRPC status can carry a better text,
// since the server never reads the headers it would answer.
import type * as grpc from "@grpc/grpc-js";
import type { Settings } from "node:http2";

/** gRPC C-core's hard limit on received metadata: what any gRPC client must expect to fit. */
export const DEFAULT_MAX_METADATA_BYTES = 16 * 1024;

/** --max-metadata-bytes may be set to: enough for Basic credentials (4096) and a vhost at the low end. */
export const MAX_METADATA_BYTES_RANGE = Object.freeze({ min: 8 * 1024, max: 1024 * 1024 });

/**
 * What the peer port allows beyond the client port's limit: a follower forwards a call with the
 * caller's metadata less its credentials, plus raftmq-authenticated-user (a name of up to 255
 * bytes), raftmq-forwarded and its own :authority, user-agent and grpc-timeout; under 1 KiB in all.
 */
export const FORWARDED_METADATA_HEADROOM_BYTES = 4 * 1024;

/** The part of grpc-js' Server this reads: the http2 server options its constructor builds. */
interface Http2OptionsHolder {
  commonServerOptions: { maxSendHeaderBlockLength: number; settings?: Settings };
}

function holdsHttp2Options(server: object): server is Http2OptionsHolder {
  if (!("commonServerOptions" in server)) return false;
  const options = server.commonServerOptions;
  if (typeof options !== "object" || options === null || !("maxSendHeaderBlockLength" in options)) return false;
  const settings = "settings" in options ? options.settings : undefined;
  return settings === undefined || (typeof settings === "object" && settings !== null);
}

/**
 * Makes `server` refuse calls whose metadata exceeds `maxBytes` (header names, values and 32 per
 * entry, as HTTP/2 counts). Call it after `new grpc.Server(...)` and before bindAsync, which
 * creates the http2 servers. Throws when grpc-js no longer keeps its http2 options where this
 * looks, so an upgrade that moves them fails at start (and in tests), not silently.
 */
export function limitMetadataBytes(server: grpc.Server, maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1 || maxBytes > 0xffff_ffff) throw new RangeError(`a metadata limit must be an integer in [1, ${0xffff_ffff}], got ${maxBytes}`);
  // Private in grpc-js' types: seen as a plain object, whose shape is checked here.
  const target: object = server;
  if (!holdsHttp2Options(target)) {
    throw new Error(
      "cannot bound request metadata: this grpc-js keeps no http2 server options in Server.commonServerOptions (as 1.14 does); adapt http2-limits.ts to the grpc-js in use",
    );
  }
  const options = target.commonServerOptions;
  options.settings = { ...options.settings, maxHeaderListSize: maxBytes };
}
