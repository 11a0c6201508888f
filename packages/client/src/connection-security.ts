// Who the client is and where it works: TLS for its channels, and on every call the user's
// credentials and virtual host as metadata, which the server checks (the Access service's model).
import * as grpc from "@grpc/grpc-js";

export const AUTHORIZATION_METADATA_KEY = "authorization";
export const VHOST_METADATA_KEY = "raftmq-vhost";
export const DEFAULT_VHOST = "/";
/** Bytes of a user name or password; gRPC's default limit on all of a call's metadata is 8 KiB. */
export const MAX_CREDENTIAL_BYTES = 1024;
export const MAX_VHOST_LENGTH = 255;

export interface Credentials {
  username: string;
  password: string;
}

export interface TlsOptions {
  /** PEM of the CA(s) that signed the nodes' certificates; without it, the system's roots. */
  ca?: string | Buffer;
  /** PEM certificate and private key of the client, for servers that ask for one (mutual TLS). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** The name to check the servers' certificates against, when it is not the host of the address. */
  serverName?: string;
}

export interface SecurityOptions {
  /** Sent as `authorization: Basic …` on every call. Without them the server may still know the user by a client certificate. */
  credentials?: Credentials;
  /** The virtual host of broker calls; "/" by default. */
  vhost?: string;
  /** TLS to every node; without it the channels are plaintext. */
  tls?: TlsOptions;
}

// RFC 7617: no control characters, and no colon in the user id (it ends the user id).
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects
const CONTROL = /[\u0000-\u001f\u007f]/;
/** A gRPC metadata value that is not binary must be printable ASCII. */
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

function checkCredentials(c: Credentials): void {
  if (typeof c.username !== "string" || c.username === "") throw new RangeError("credentials.username must not be empty");
  if (typeof c.password !== "string" || c.password === "") {
    throw new RangeError(`credentials.password of user ${JSON.stringify(c.username)} must not be empty; a user without a password authenticates with a client certificate (tls.cert), without credentials`);
  }
  if (c.username.includes(":")) throw new RangeError(`credentials.username must not hold ":" (it separates user and password in Basic authentication), got ${JSON.stringify(c.username)}`);
  for (const [what, value] of [
    ["username", c.username],
    ["password", c.password],
  ] as const) {
    if (CONTROL.test(value)) throw new RangeError(`credentials.${what} must not hold control characters`);
    if (Buffer.byteLength(value) > MAX_CREDENTIAL_BYTES) throw new RangeError(`credentials.${what} must be at most ${MAX_CREDENTIAL_BYTES} bytes`);
  }
}

function checkVhost(vhost: string): void {
  if (vhost.length > MAX_VHOST_LENGTH || !PRINTABLE_ASCII.test(vhost)) {
    throw new RangeError(`vhost must be 1 to ${MAX_VHOST_LENGTH} printable ASCII characters (it travels as gRPC metadata), got ${JSON.stringify(vhost)}`);
  }
}

function pem(value: string | Buffer | undefined): Buffer | null {
  if (value === undefined) return null;
  return Buffer.isBuffer(value) ? value : Buffer.from(value, "utf8");
}

/** `Basic base64(username:password)`, the value of the authorization metadata. */
export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, "utf8").toString("base64")}`;
}

/** Checked security options, turned into what grpc-js needs: channel credentials and options, and per-call metadata. */
export class ConnectionSecurity {
  /** Plaintext channels, no credentials, the default vhost. */
  static readonly NONE = new ConnectionSecurity();

  readonly vhost: string;
  readonly username: string | undefined;
  readonly tls: boolean;
  readonly channelCredentials: grpc.ChannelCredentials;
  readonly channelOptions: grpc.ChannelOptions;
  private readonly template = new grpc.Metadata();

  constructor(options: SecurityOptions = {}) {
    this.vhost = options.vhost ?? DEFAULT_VHOST;
    checkVhost(this.vhost);
    if (options.credentials !== undefined) {
      checkCredentials(options.credentials);
      this.username = options.credentials.username;
      this.template.set(AUTHORIZATION_METADATA_KEY, basicAuthorization(options.credentials));
    }
    if (this.vhost !== DEFAULT_VHOST) this.template.set(VHOST_METADATA_KEY, this.vhost);

    const t = options.tls;
    this.tls = t !== undefined;
    this.channelOptions = {};
    if (t === undefined) {
      this.channelCredentials = grpc.credentials.createInsecure();
      return;
    }
    if ((t.cert === undefined) !== (t.key === undefined)) throw new RangeError("tls.cert and tls.key go together: give both or neither");
    if (t.serverName !== undefined) {
      if (!HOST_NAME.test(t.serverName)) throw new RangeError(`tls.serverName must be a host name, got ${JSON.stringify(t.serverName)}`);
      this.channelOptions = { "grpc.ssl_target_name_override": t.serverName, "grpc.default_authority": t.serverName };
    }
    this.channelCredentials = grpc.credentials.createSsl(pem(t.ca), pem(t.key), pem(t.cert));
  }

  /** The metadata of one call; a fresh copy each time, since grpc-js may add to it. */
  metadata(): grpc.Metadata {
    return this.template.clone();
  }
}
