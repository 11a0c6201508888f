// `raftmq cert`: the cluster's CA and the certificates of its nodes and users, without openssl.
// Keys are written with mode 0600; nothing is replaced without --force.
import { X509Certificate } from "node:crypto";
import {
  CertificateFileExistsError,
  type CertificatePaths,
  type CertificateWithKey,
  caPaths,
  clientCertificatePaths,
  createCa,
  createClientCertificate,
  createNodeCertificate,
  DEFAULT_CA_VALID_DAYS,
  DEFAULT_LEAF_VALID_DAYS,
  MAX_VALID_DAYS,
  nodeCertificatePaths,
  readCertificateFiles,
  writeCertificateFiles,
} from "@raftmq/server";
import { type Command, InvalidArgumentError, Option } from "commander";

/** A refusal of `raftmq cert`; nothing was written. */
export class CertCommandError extends Error {
  override name = "CertCommandError";
}

function integerOption(name: string, min: number, max: number): (raw: string) => number {
  return (raw) => {
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(",").map((h) => h.trim())];
}

const daysOption = (fallback: number) => new Option("--days <n>", "days the certificate is valid").default(fallback).argParser(integerOption("--days", 1, MAX_VALID_DAYS));
const forceOption = () => new Option("--force", "replace the files when they exist");

async function readCa(dir: string): Promise<CertificateWithKey> {
  const paths = caPaths(dir);
  try {
    return await readCertificateFiles(paths);
  } catch (err) {
    throw new CertCommandError(`cannot read the CA from ${paths.certPath} and ${paths.keyPath} (${(err as NodeJS.ErrnoException).code ?? String(err)}); create it with: raftmq cert create-ca --dir ${dir}`);
  }
}

async function write(paths: CertificatePaths, pair: CertificateWithKey, force: boolean, replacing: string): Promise<void> {
  try {
    await writeCertificateFiles(paths, pair, { overwrite: force });
  } catch (err) {
    if (err instanceof CertificateFileExistsError) throw new CertCommandError(`${err.path} exists already; --force replaces it${replacing}`);
    throw err;
  }
}

function report(paths: CertificatePaths, pair: CertificateWithKey): void {
  const cert = new X509Certificate(pair.certPem);
  const names = cert.subjectAltName === undefined ? "" : `; ${cert.subjectAltName}`;
  process.stdout.write(
    `wrote ${paths.certPath} and ${paths.keyPath} (the key readable by its owner only)\n` + `  subject ${cert.subject.replaceAll("\n", ", ")}${names}\n` + `  valid until ${new Date(cert.validTo).toISOString()}\n`,
  );
}

export function addCertCommand(program: Command): void {
  const cert = program
    .command("cert")
    .description("create the cluster's CA, and certificates signed by it for nodes (mutual TLS between nodes, TLS for clients) and users (ECDSA P-256, PEM)");

  cert
    .command("create-ca")
    .description("create a CA: <dir>/ca.crt, to give every node and client, and <dir>/ca.key, to keep secret")
    .requiredOption("--dir <dir>", "folder of the certificates (created with mode 0700 when missing)")
    .option("--common-name <name>", "the CA's common name", "raftmq CA")
    .addOption(daysOption(DEFAULT_CA_VALID_DAYS))
    .addOption(forceOption())
    .action(async (o: { dir: string; commonName: string; days: number; force?: boolean }) => {
      const pair = await createCa({ commonName: o.commonName, validDays: o.days });
      const paths = caPaths(o.dir);
      await write(paths, pair, o.force === true, ": every certificate the old CA signed stops being trusted");
      report(paths, pair);
    });

  cert
    .command("create-node")
    .description("create <dir>/node-<id>.crt and .key for a node, signed by the CA: its identity is the URI urn:raftmq:node:<id>, and it serves the hosts named")
    .requiredOption("--dir <dir>", "folder of the certificates")
    .requiredOption("--id <n>", "the node's id", integerOption("--id", 1, Number.MAX_SAFE_INTEGER))
    .option("--host <host>", "a DNS name or IP address clients and peers reach the node by; repeat it (or separate with commas) for each", collect)
    .option("--ca-dir <dir>", "folder of ca.crt and ca.key (default: --dir)")
    .addOption(daysOption(DEFAULT_LEAF_VALID_DAYS))
    .addOption(forceOption())
    .action(async (o: { dir: string; id: number; host?: string[]; caDir?: string; days: number; force?: boolean }) => {
      const hosts = (o.host ?? []).filter((h) => h !== "");
      if (hosts.length === 0) throw new CertCommandError("give at least one --host: a name or address clients and peers reach the node by");
      const ca = await readCa(o.caDir ?? o.dir);
      const pair = await createNodeCertificate(ca, { nodeId: o.id, hosts, validDays: o.days });
      const paths = nodeCertificatePaths(o.dir, o.id);
      await write(paths, pair, o.force === true, "");
      report(paths, pair);
    });

  cert
    .command("create-client")
    .description("create <dir>/client-<user>.crt and .key for a user, signed by the CA: a client presenting it is the user its common name names")
    .requiredOption("--dir <dir>", "folder of the certificates")
    .requiredOption("--user <name>", "the user's name")
    .option("--ca-dir <dir>", "folder of ca.crt and ca.key (default: --dir)")
    .addOption(daysOption(DEFAULT_LEAF_VALID_DAYS))
    .addOption(forceOption())
    .action(async (o: { dir: string; user: string; caDir?: string; days: number; force?: boolean }) => {
      const paths = clientCertificatePaths(o.dir, o.user);
      const ca = await readCa(o.caDir ?? o.dir);
      const pair = await createClientCertificate(ca, { user: o.user, validDays: o.days });
      await write(paths, pair, o.force === true, "");
      report(paths, pair);
    });
}
