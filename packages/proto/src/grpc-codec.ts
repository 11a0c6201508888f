// grpc-js service definitions whose (de)serializers are the generated static protobufjs
// classes: no reflection and no object conversion on the hot path. Method paths follow the
// proto names (`/raftmq.v1.Raft/Stream`), so any client or server generated from the same
// .proto files interoperates.
import type * as grpc from "@grpc/grpc-js";

/** The part of a generated static message class a codec needs. */
export interface WireCodec<T> {
  // Method syntax on purpose: it keeps T bivariant, so tables of differing codecs type-check.
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
}

export interface MethodSpec<Req, Res> {
  request: WireCodec<Req>;
  response: WireCodec<Res>;
  requestStream: boolean;
  responseStream: boolean;
}

export type MethodTable = Record<string, MethodSpec<unknown, unknown>>;

type RequestOf<S> = S extends MethodSpec<infer Q, unknown> ? Q : never;
type ResponseOf<S> = S extends MethodSpec<unknown, infer R> ? R : never;

export type TypedServiceDefinition<M extends MethodTable> = {
  readonly [K in keyof M]: grpc.MethodDefinition<RequestOf<M[K]>, ResponseOf<M[K]>>;
};

/** Sends bytes as they are: for callers that encode frames themselves. */
export const rawBytes: WireCodec<Uint8Array> = {
  encode: (message) => ({ finish: () => message }),
  decode: (bytes) => bytes,
};

/** Wraps bytes as a Buffer without copying; protobufjs already hands out Buffers under Node. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * What a server's deserializer hands over instead of throwing on bytes that are not the request
 * (malformed protobuf, a string that is not UTF-8): grpc-js would answer a throw with INTERNAL,
 * while the request was at fault. Handlers answer it with INVALID_ARGUMENT and `reason`.
 */
export class MalformedRequest {
  constructor(readonly reason: string) {}
}

function describeDecodeError(messageName: string, err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "ERR_ENCODING_INVALID_ENCODED_DATA") return `the request is not a valid ${messageName}: a string field is not valid UTF-8`;
  return `the request is not a valid ${messageName} (malformed protobuf: ${err instanceof Error ? err.message : String(err)})`;
}

function lowerFirst(name: string): string {
  return name.length === 0 ? name : name.charAt(0).toLowerCase() + name.slice(1);
}

/**
 * Builds a grpc-js service definition for `serviceName` (fully qualified, e.g.
 * "raftmq.v1.Raft"). Keys of `methods` are the RPC names exactly as in the .proto file.
 */
export function defineService<M extends MethodTable>(serviceName: string, methods: M): TypedServiceDefinition<M> {
  if (!/^[A-Za-z_][\w.]*$/.test(serviceName)) {
    throw new Error(`invalid gRPC service name ${JSON.stringify(serviceName)}`);
  }
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const name of Object.keys(methods)) {
    const spec = methods[name];
    if (spec === undefined) continue;
    const { request, response } = spec;
    // The generated classes are named after their messages.
    const className = typeof request === "function" ? (request as { name?: string }).name : undefined;
    const requestName = className !== undefined && className !== "" ? `raftmq.v1.${className}` : `request of ${name}`;
    definition[name] = {
      path: `/${serviceName}/${name}`,
      requestStream: spec.requestStream,
      responseStream: spec.responseStream,
      requestSerialize: (value) => asBuffer(request.encode(value).finish()),
      requestDeserialize: (bytes) => {
        try {
          return request.decode(bytes);
        } catch (err) {
          return new MalformedRequest(describeDecodeError(requestName, err));
        }
      },
      responseSerialize: (value) => asBuffer(response.encode(value).finish()),
      responseDeserialize: (bytes) => response.decode(bytes),
      // proto-loader sets the camelCase name too; grpc-js clients expose both.
      originalName: lowerFirst(name),
    };
  }
  return definition as TypedServiceDefinition<M>;
}
