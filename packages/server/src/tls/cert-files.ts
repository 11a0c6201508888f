// Certificates on disk: one folder holds ca.crt/ca.key, node-<id>.crt/.key and
// client-<user>.crt/.key. Keys are written with mode 0600, every file through a rename so a
// reader never sees half of one.
import { X509Certificate as NodeX509Certificate, createPrivateKey } from "node:crypto";
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { dirname, join } from "node:path";
import { type CertificateWithKey, createCa, createClientCertificate, createNodeCertificate } from "./cert-authority.ts";
import { checkNodeId, nodeIdFromSubjectAltName } from "./cert-identity.ts";

export interface CertificatePaths {
  certPath: string;
  keyPath: string;
}

/** A certificate is reused only while it stays valid at least this long. */
const MIN_REMAINING_VALIDITY_MS = 24 * 3_600_000;

/** User names that make safe file names: no separators, no leading dot. */
const FILE_SAFE_USER = /^[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}$/;

export function caPaths(dir: string): CertificatePaths {
  return { certPath: join(dir, "ca.crt"), keyPath: join(dir, "ca.key") };
}

export function nodeCertificatePaths(dir: string, nodeId: number): CertificatePaths {
  checkNodeId(nodeId);
  return { certPath: join(dir, `node-${nodeId}.crt`), keyPath: join(dir, `node-${nodeId}.key`) };
}

export function clientCertificatePaths(dir: string, user: string): CertificatePaths {
  if (!FILE_SAFE_USER.test(user)) {
    throw new RangeError(`user ${JSON.stringify(user)} cannot name a file client-<user>.crt: use letters, digits and . _ @ - (not first: . @ -), at most 64`);
  }
  return { certPath: join(dir, `client-${user}.crt`), keyPath: join(dir, `client-${user}.key`) };
}

/** A certificate or key file that is there already, and that the caller did not allow to replace. */
export class CertificateFileExistsError extends Error {
  override name = "CertificateFileExistsError";
  constructor(readonly path: string) {
    super(`${path} exists already`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

async function writeAtomically(path: string, content: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, content, { mode, flag: "w" });
    // writeFile's mode applies only to a new file; a leftover temporary keeps its own.
    await chmod(temporary, mode);
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

/**
 * Writes a certificate (mode 0644) and its private key (mode 0600), creating the folder (mode
 * 0700) when missing. Refuses with CertificateFileExistsError to replace either unless `overwrite`.
 */
export async function writeCertificateFiles(paths: CertificatePaths, pair: CertificateWithKey, options: { overwrite?: boolean } = {}): Promise<void> {
  if (options.overwrite !== true) {
    for (const path of [paths.certPath, paths.keyPath]) if (await exists(path)) throw new CertificateFileExistsError(path);
  }
  for (const dir of new Set([paths.certPath, paths.keyPath].map((p) => dirname(p)))) await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeAtomically(paths.keyPath, pair.keyPem, 0o600);
  await writeAtomically(paths.certPath, pair.certPem, 0o644);
}

export async function readCertificateFiles(paths: CertificatePaths): Promise<CertificateWithKey> {
  const [certPem, keyPem] = await Promise.all([readFile(paths.certPath, "utf8"), readFile(paths.keyPath, "utf8")]);
  return { certPem, keyPem };
}

/** What a certificate must be for dev certificates to keep it. */
type Expectation = { kind: "ca" } | { kind: "node"; nodeId: number; hosts: readonly string[] } | { kind: "client"; user: string };

/** The pair at `paths` when it exists, parses, and is still what `expected` asks; null otherwise. */
async function reusable(paths: CertificatePaths, expected: Expectation, ca: NodeX509Certificate | null): Promise<CertificateWithKey | null> {
  let pair: CertificateWithKey;
  let cert: NodeX509Certificate;
  try {
    pair = await readCertificateFiles(paths);
    cert = new NodeX509Certificate(pair.certPem);
    if (!cert.checkPrivateKey(createPrivateKey(pair.keyPem))) return null;
  } catch {
    return null;
  }
  const now = Date.now();
  if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) < now + MIN_REMAINING_VALIDITY_MS) return null;
  if (ca !== null && !(cert.checkIssued(ca) && cert.verify(ca.publicKey))) return null;
  switch (expected.kind) {
    case "ca":
      return cert.ca ? pair : null;
    case "node": {
      if (nodeIdFromSubjectAltName(cert.subjectAltName) !== expected.nodeId) return null;
      const covers = expected.hosts.every((h) => {
        const host = h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h;
        return isIP(host) !== 0 ? cert.checkIP(host) !== undefined : cert.checkHost(host, { subject: "never" }) !== undefined;
      });
      return covers ? pair : null;
    }
    case "client":
      return cert.subject.split("\n").includes(`CN=${expected.user}`) ? pair : null;
    default: {
      const never: never = expected;
      throw new Error(`unknown certificate expectation ${String(never)}`);
    }
  }
}

export interface DevCertificates {
  ca: CertificatePaths;
  nodes: ReadonlyMap<number, CertificatePaths>;
  clients: ReadonlyMap<string, CertificatePaths>;
  /** Files written by this call; empty when every certificate was reused. */
  written: string[];
}

/**
 * Certificates for a local cluster in `dir`: a CA, one certificate per node id naming `hosts`,
 * one per user. A certificate already there is kept while it is valid for another day, signed by
 * the CA, and names the same node (and covers `hosts`) or user; a new CA replaces every other
 * certificate. Not for concurrent use on one folder: call it once before starting the nodes.
 */
export async function writeDevCertificates(dir: string, options: { nodeIds: readonly number[]; hosts: readonly string[]; users?: readonly string[] }): Promise<DevCertificates> {
  for (const id of options.nodeIds) checkNodeId(id);
  const users = options.users ?? [];
  for (const user of users) clientCertificatePaths(dir, user);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const written: string[] = [];
  const keep = async (paths: CertificatePaths, make: () => Promise<CertificateWithKey>, existing: CertificateWithKey | null): Promise<CertificateWithKey> => {
    if (existing !== null) return existing;
    const pair = await make();
    await writeCertificateFiles(paths, pair, { overwrite: true });
    written.push(paths.certPath, paths.keyPath);
    return pair;
  };

  const ca = caPaths(dir);
  const caPair = await keep(ca, () => createCa(), await reusable(ca, { kind: "ca" }, null));
  const caCert = new NodeX509Certificate(caPair.certPem);
  const fresh = written.length > 0;

  const nodes = new Map<number, CertificatePaths>();
  for (const nodeId of new Set(options.nodeIds)) {
    const paths = nodeCertificatePaths(dir, nodeId);
    const existing = fresh ? null : await reusable(paths, { kind: "node", nodeId, hosts: options.hosts }, caCert);
    await keep(paths, () => createNodeCertificate(caPair, { nodeId, hosts: options.hosts }), existing);
    nodes.set(nodeId, paths);
  }
  const clients = new Map<string, CertificatePaths>();
  for (const user of new Set(users)) {
    const paths = clientCertificatePaths(dir, user);
    const existing = fresh ? null : await reusable(paths, { kind: "client", user }, caCert);
    await keep(paths, () => createClientCertificate(caPair, { user }), existing);
    clients.set(user, paths);
  }
  return { ca, nodes, clients, written };
}
