// A small certificate authority for a raftmq cluster: the CA, node certificates (peer mTLS and the
// client API) and user certificates, all ECDSA P-256 with SHA-256, as PEM. Everything is in memory;
// cert-files.ts puts them on disk.
import "reflect-metadata"; // @peculiar/x509 (through tsyringe) needs the Reflect metadata API loaded first.
import { KeyObject, createPrivateKey, X509Certificate as NodeX509Certificate, randomBytes, type webcrypto } from "node:crypto";
import { isIP } from "node:net";
import * as x509 from "@peculiar/x509";
import { checkNodeId, nodeCommonName, nodeUri } from "./cert-identity.ts";

x509.cryptoProvider.set(globalThis.crypto);

export interface CertificateWithKey {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
}

export const DEFAULT_CA_COMMON_NAME = "raftmq CA";
export const DEFAULT_CA_VALID_DAYS = 3650;
export const DEFAULT_LEAF_VALID_DAYS = 365;
/** About a century: past that a date is surely a typo. */
export const MAX_VALID_DAYS = 36_500;
/** Certificates start this far in the past, so a node whose clock is a little behind still accepts them. */
const CLOCK_SKEW_MS = 5 * 60_000;
/** RFC 5280's upper bound of a common name. */
export const MAX_COMMON_NAME_LENGTH = 64;
export const MAX_HOSTS = 100;

const EC_KEY: webcrypto.EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING: webcrypto.EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const O_RAFTMQ = { O: ["raftmq"] };

function validity(validDays: number): { notBefore: Date; notAfter: Date } {
  if (!Number.isSafeInteger(validDays) || validDays < 1 || validDays > MAX_VALID_DAYS) {
    throw new RangeError(`validDays must be an integer in [1, ${MAX_VALID_DAYS}], got ${validDays}`);
  }
  const now = Date.now();
  return { notBefore: new Date(now - CLOCK_SKEW_MS), notAfter: new Date(now + validDays * 86_400_000) };
}

/** 128 random bits, positive as RFC 5280 wants (the top bit clear, so no sign byte is needed). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString("hex");
}

function checkCommonName(what: string, name: string): void {
  if (name.length === 0 || name.length > MAX_COMMON_NAME_LENGTH) throw new RangeError(`${what} must be 1 to ${MAX_COMMON_NAME_LENGTH} characters, got ${JSON.stringify(name)}`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new RangeError(`${what} must not hold control characters, got ${JSON.stringify(name)}`);
}

async function newKeyPair(): Promise<{ keys: webcrypto.CryptoKeyPair; keyPem: string }> {
  const keys = await crypto.subtle.generateKey(EC_KEY, true, ["sign", "verify"]);
  const keyPem = KeyObject.from(keys.privateKey).export({ type: "pkcs8", format: "pem" }).toString();
  return { keys, keyPem };
}

/** A CA parsed and checked: its certificate and a key that signs for it. */
interface LoadedCa {
  cert: x509.X509Certificate;
  signingKey: webcrypto.CryptoKey;
}

async function loadCa(ca: CertificateWithKey): Promise<LoadedCa> {
  const nodeCert = new NodeX509Certificate(ca.certPem);
  if (!nodeCert.ca) throw new RangeError(`the certificate ${nodeCert.subject.replaceAll("\n", ", ")} is not a CA certificate (basicConstraints CA:true)`);
  const privateKey = createPrivateKey(ca.keyPem);
  if (!nodeCert.checkPrivateKey(privateKey)) throw new RangeError("the CA key does not belong to the CA certificate");
  if (privateKey.asymmetricKeyType !== "ec" || privateKey.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new RangeError("the CA key must be an ECDSA P-256 key");
  }
  const der = privateKey.export({ type: "pkcs8", format: "der" });
  const signingKey = await crypto.subtle.importKey("pkcs8", der, EC_KEY, false, ["sign"]);
  return { cert: new x509.X509Certificate(ca.certPem), signingKey };
}

async function authorityKeyId(ca: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = ca.getExtension(x509.SubjectKeyIdentifierExtension);
  return ski !== null ? new x509.AuthorityKeyIdentifierExtension(ski.keyId) : x509.AuthorityKeyIdentifierExtension.create(ca.publicKey);
}

async function issue(
  ca: CertificateWithKey,
  subject: x509.JsonName,
  validDays: number,
  extensions: (publicKey: webcrypto.CryptoKey) => Promise<x509.Extension[]>,
): Promise<CertificateWithKey> {
  const authority = await loadCa(ca);
  const { keys, keyPem } = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject,
    issuer: authority.cert.subjectName,
    ...validity(validDays),
    publicKey: keys.publicKey,
    signingKey: authority.signingKey,
    signingAlgorithm: SIGNING,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true), await authorityKeyId(authority.cert), ...(await extensions(keys.publicKey))],
  });
  return { certPem: cert.toString("pem"), keyPem };
}

/** A self-signed CA: basicConstraints CA:true, keyCertSign and cRLSign. */
export async function createCa(options: { commonName?: string; validDays?: number } = {}): Promise<CertificateWithKey> {
  const commonName = options.commonName ?? DEFAULT_CA_COMMON_NAME;
  checkCommonName("the CA's common name", commonName);
  const { keys, keyPem } = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ CN: [commonName] }, O_RAFTMQ],
    keys,
    ...validity(options.validDays ?? DEFAULT_CA_VALID_DAYS),
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem };
}

const DNS_NAME = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** subjectAltName entries of `hosts`: IP addresses as IP entries, the rest as DNS names. */
export function hostNames(hosts: readonly string[]): x509.JsonGeneralName[] {
  if (hosts.length > MAX_HOSTS) throw new RangeError(`a certificate names at most ${MAX_HOSTS} hosts, got ${hosts.length}`);
  const names: x509.JsonGeneralName[] = [];
  for (const raw of new Set(hosts.map((h) => h.trim()))) {
    // "[::1]" as in an address with a port.
    const host = raw.startsWith("[") && raw.endsWith("]") ? raw.slice(1, -1) : raw;
    if (isIP(host) !== 0) names.push({ type: "ip", value: host });
    else if (host.length <= 253 && DNS_NAME.test(host)) names.push({ type: "dns", value: host.toLowerCase() });
    else throw new RangeError(`${JSON.stringify(raw)} is neither an IP address nor a DNS name`);
  }
  return names;
}

/**
 * A node's certificate, used on both ends of peer mTLS and for the client API: subject
 * `CN=raftmq-node-<id>, O=raftmq`, subjectAltName `URI:urn:raftmq:node:<id>` and the hosts it
 * serves, EKU serverAuth and clientAuth.
 */
export async function createNodeCertificate(ca: CertificateWithKey, options: { nodeId: number; hosts: readonly string[]; validDays?: number }): Promise<CertificateWithKey> {
  checkNodeId(options.nodeId);
  const names = hostNames(options.hosts);
  return issue(ca, [{ CN: [nodeCommonName(options.nodeId)] }, O_RAFTMQ], options.validDays ?? DEFAULT_LEAF_VALID_DAYS, async (publicKey) => [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    new x509.SubjectAlternativeNameExtension([{ type: "url", value: nodeUri(options.nodeId) }, ...names]),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
  ]);
}

/** A user's certificate: subject `CN=<user>`, EKU clientAuth. */
export async function createClientCertificate(ca: CertificateWithKey, options: { user: string; validDays?: number }): Promise<CertificateWithKey> {
  checkCommonName("a user name", options.user);
  return issue(ca, [{ CN: [options.user] }], options.validDays ?? DEFAULT_LEAF_VALID_DAYS, async (publicKey) => [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
  ]);
}
