// What every raftmqctl command shares: the global options (where the cluster is, who we are,
// TLS) and a connected client.
import { readFile } from "node:fs/promises";
import { type ConnectOptions, connect, DEFAULT_VHOST, type RaftmqClient, type SecurityOptions } from "@raftmq/client";
import { type Command, InvalidArgumentError, Option } from "commander";
import { readSecretFile } from "./ctl-secret-input.ts";
import { DEV_ADDRESSES } from "./dev-layout.ts";

export const ADDRESSES_ENV = "RAFTMQ_ADDRESSES";
export const DEFAULT_USERNAME = "guest";
/** RabbitMQ's default user, and only its password is assumed. */
export const DEFAULT_PASSWORD = "guest";

export interface SecurityFlags {
  username: string;
  password?: string;
  passwordFile?: string;
  vhost: string;
  tlsCaFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsServerName?: string;
}

export interface GlobalOptions extends SecurityFlags {
  addresses: string;
  timeoutMs: number;
}

/** The options do not fit together or name unreadable files; nothing was sent. */
export class UsageError extends Error {
  override name = "UsageError";
}

export function defaultAddresses(): string {
  return process.env[ADDRESSES_ENV] ?? DEV_ADDRESSES.join(",");
}

/** Who we are and how we talk to the nodes: raftmqctl's global options beyond --addresses and --timeout-ms. */
export function addSecurityOptions(program: Command): Command {
  return program
    .addOption(new Option("--username <name>", "user to authenticate as; not sent when a client certificate authenticates (--tls-cert-file without a password)").env("RAFTMQ_USERNAME").default(DEFAULT_USERNAME))
    .addOption(
      new Option("--password <password>", `password of --username; "${DEFAULT_PASSWORD}" when that is "${DEFAULT_USERNAME}" and none is given. Other local users can read it in the process list: prefer --password-file`).env(
        "RAFTMQ_PASSWORD",
      ),
    )
    .addOption(new Option("--password-file <path>", "read the password of --username from this file (one line)").env("RAFTMQ_PASSWORD_FILE"))
    .addOption(new Option("--vhost <name>", "virtual host the commands work in: its queues, exchanges, bindings and messages").env("RAFTMQ_VHOST").default(DEFAULT_VHOST))
    .addOption(new Option("--tls-ca-file <path>", "connect with TLS, trusting the nodes' certificates this CA (PEM) signed; without it, connections are plaintext").env("RAFTMQ_TLS_CA_FILE"))
    .addOption(new Option("--tls-cert-file <path>", "client certificate (PEM) for nodes that ask for one; needs --tls-ca-file and --tls-key-file").env("RAFTMQ_TLS_CERT_FILE"))
    .addOption(new Option("--tls-key-file <path>", "private key (PEM) of --tls-cert-file").env("RAFTMQ_TLS_KEY_FILE"))
    .addOption(new Option("--tls-server-name <name>", "host name to check the nodes' certificates against, when --addresses are not in them; needs --tls-ca-file").env("RAFTMQ_TLS_SERVER_NAME"));
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/**
 * The credentials, vhost and TLS of the connection. A password comes from --password or
 * --password-file (never both); without one, the user guest uses "guest", a client certificate
 * authenticates by itself, and any other user is an error.
 */
export async function securityOptionsOf(flags: SecurityFlags): Promise<SecurityOptions> {
  if (flags.password !== undefined && flags.passwordFile !== undefined) {
    throw new UsageError("give --password (RAFTMQ_PASSWORD) or --password-file (RAFTMQ_PASSWORD_FILE), not both");
  }
  if (flags.tlsCaFile === undefined) {
    const needsCa = ([["--tls-cert-file", flags.tlsCertFile], ["--tls-key-file", flags.tlsKeyFile], ["--tls-server-name", flags.tlsServerName]] as const).find(([, v]) => v !== undefined);
    if (needsCa !== undefined) throw new UsageError(`${needsCa[0]} needs --tls-ca-file: TLS is used only with a CA file`);
  }
  if ((flags.tlsCertFile === undefined) !== (flags.tlsKeyFile === undefined)) throw new UsageError("--tls-cert-file and --tls-key-file go together");

  const options: SecurityOptions = { vhost: flags.vhost };
  if (flags.tlsCaFile !== undefined) {
    options.tls = { ca: await readPem(flags.tlsCaFile, "the CA file") };
    if (flags.tlsCertFile !== undefined && flags.tlsKeyFile !== undefined) {
      options.tls.cert = await readPem(flags.tlsCertFile, "the certificate file");
      options.tls.key = await readPem(flags.tlsKeyFile, "the key file");
    }
    if (flags.tlsServerName !== undefined) options.tls.serverName = flags.tlsServerName;
  }

  const password = flags.passwordFile !== undefined ? await readSecretFile(flags.passwordFile) : flags.password;
  if (password !== undefined) options.credentials = { username: flags.username, password };
  else if (options.tls?.cert !== undefined) {
    // The certificate's common name is the user.
  } else if (flags.username === DEFAULT_USERNAME) options.credentials = { username: DEFAULT_USERNAME, password: DEFAULT_PASSWORD };
  else throw new UsageError(`no password for user ${JSON.stringify(flags.username)}: give --password-file (RAFTMQ_PASSWORD_FILE), --password (RAFTMQ_PASSWORD), or a client certificate (--tls-cert-file)`);
  return options;
}

/**
 * The program's own options. Not optsWithGlobals(): a command's option of the same name
 * (`user add --password`) would stand in for a global one left unset.
 */
export function globals(command: Command): GlobalOptions {
  let root = command;
  while (root.parent !== null) root = root.parent;
  return root.opts<GlobalOptions>();
}

export async function connectOptionsOf(o: GlobalOptions): Promise<ConnectOptions> {
  return { callTimeoutMs: o.timeoutMs, retryTimeoutMs: Math.max(o.timeoutMs, 1000), ...(await securityOptionsOf(o)) };
}

/** Connects with the global options, runs `body`, and closes the client whatever happens. */
export async function withClient<T>(command: Command, body: (client: RaftmqClient) => Promise<T>): Promise<T> {
  const o = globals(command);
  const client = await connect(o.addresses.split(","), await connectOptionsOf(o));
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

export function positiveInteger(name: string, min = 1): (raw: string) => number {
  return (raw) => {
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
}
