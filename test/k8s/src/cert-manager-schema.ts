// cert-manager's CRDs have no schema package: this holds Issuer and Certificate (cert-manager.io/v1)
// to the fields their CRDs require, the enums they define and the rules cert-manager's webhook
// enforces, and refuses fields they do not have (kubectl apply validates strictly too).
import type { SchemaResult } from "./k8s-schema.ts";

const CERTIFICATE_SPEC_FIELDS = new Set([
  "subject", "literalSubject", "commonName", "duration", "renewBefore", "renewBeforePercentage", "dnsNames", "ipAddresses", "uris", "otherNames",
  "emailAddresses", "secretName", "secretTemplate", "keystores", "issuerRef", "isCA", "usages", "privateKey", "signatureAlgorithm", "encodeUsagesInRequest",
  "revisionHistoryLimit", "additionalOutputFormats", "nameConstraints",
]);
const PRIVATE_KEY_FIELDS = new Set(["rotationPolicy", "encoding", "algorithm", "size"]);
const ISSUER_REF_FIELDS = new Set(["name", "kind", "group"]);
const ISSUER_TYPES = ["acme", "ca", "vault", "selfSigned", "venafi"];
export const KEY_USAGES = new Set([
  "signing", "digital signature", "content commitment", "key encipherment", "key agreement", "data encipherment", "cert sign", "crl sign", "encipher only",
  "decipher only", "any", "server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system", "ipsec tunnel", "ipsec user",
  "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc",
]);
const KEY_SIZES: Record<string, (size: number) => boolean> = {
  RSA: (size) => size >= 2048 && size <= 8192,
  ECDSA: (size) => size === 256 || size === 384 || size === 521,
  Ed25519: () => true,
};
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_NAME = /^(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$/;
const GO_DURATION_PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
const MS_PER_UNIT: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A Go duration (`2160h`, `1h30m`) in milliseconds, or undefined when it is not one. */
export function goDurationMs(text: unknown): number | undefined {
  if (typeof text !== "string" || !/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(GO_DURATION_PART)) ms += Number(amount) * (MS_PER_UNIT[unit ?? ""] ?? Number.NaN);
  return ms;
}

function unknownFields(value: Record<string, unknown>, known: ReadonlySet<string>, where: string, problems: string[]): void {
  for (const key of Object.keys(value)) if (!known.has(key)) problems.push(`${where}.${key} is not a field`);
}

function stringList(value: unknown, where: string, problems: string[], check?: (s: string) => boolean): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    problems.push(`${where} must be a list of strings`);
    return [];
  }
  for (const v of value as string[]) if (check !== undefined && !check(v)) problems.push(`${where}: ${JSON.stringify(v)} is not valid`);
  return value as string[];
}

function checkCertificate(spec: Record<string, unknown>, problems: string[]): void {
  unknownFields(spec, CERTIFICATE_SPEC_FIELDS, "spec", problems);
  if (typeof spec.secretName !== "string" || !DNS_SUBDOMAIN.test(spec.secretName)) problems.push("spec.secretName is required: a Secret name");
  if (!isRecord(spec.issuerRef) || typeof spec.issuerRef.name !== "string" || spec.issuerRef.name === "") problems.push("spec.issuerRef.name is required");
  else {
    unknownFields(spec.issuerRef, ISSUER_REF_FIELDS, "spec.issuerRef", problems);
    for (const key of ["kind", "group"]) if (spec.issuerRef[key] !== undefined && typeof spec.issuerRef[key] !== "string") problems.push(`spec.issuerRef.${key} must be a string`);
  }
  if (spec.commonName !== undefined && (typeof spec.commonName !== "string" || spec.commonName.length > 64)) problems.push("spec.commonName must be a string of at most 64 characters");
  const dnsNames = stringList(spec.dnsNames, "spec.dnsNames", problems, (s) => DNS_NAME.test(s));
  const uris = stringList(spec.uris, "spec.uris", problems, (s) => URL.canParse(s));
  const ips = stringList(spec.ipAddresses, "spec.ipAddresses", problems);
  const emails = stringList(spec.emailAddresses, "spec.emailAddresses", problems);
  // The webhook's rule: a certificate must name something.
  if (spec.commonName === undefined && spec.literalSubject === undefined && dnsNames.length + uris.length + ips.length + emails.length === 0) {
    problems.push("at least one of spec.commonName, spec.dnsNames, spec.uris, spec.ipAddresses or spec.emailAddresses is required");
  }
  if (spec.isCA !== undefined && typeof spec.isCA !== "boolean") problems.push("spec.isCA must be a boolean");
  stringList(spec.usages, "spec.usages", problems, (u) => KEY_USAGES.has(u));
  const duration = spec.duration === undefined ? 90 * 24 * 3_600_000 : goDurationMs(spec.duration);
  if (duration === undefined) problems.push(`spec.duration ${JSON.stringify(spec.duration)} is not a duration`);
  else if (duration < 3_600_000) problems.push("spec.duration must be at least 1h");
  if (spec.renewBefore !== undefined) {
    const renewBefore = goDurationMs(spec.renewBefore);
    if (renewBefore === undefined) problems.push(`spec.renewBefore ${JSON.stringify(spec.renewBefore)} is not a duration`);
    else if (renewBefore < 5 * 60_000 || (duration !== undefined && renewBefore >= duration)) problems.push("spec.renewBefore must be at least 5m and shorter than spec.duration");
  }
  if (spec.privateKey !== undefined) {
    if (!isRecord(spec.privateKey)) problems.push("spec.privateKey must be an object");
    else {
      const key = spec.privateKey;
      unknownFields(key, PRIVATE_KEY_FIELDS, "spec.privateKey", problems);
      const algorithm = key.algorithm ?? "RSA";
      const sizeOk = typeof algorithm === "string" ? KEY_SIZES[algorithm] : undefined;
      if (sizeOk === undefined) problems.push(`spec.privateKey.algorithm ${JSON.stringify(algorithm)} is not RSA, ECDSA or Ed25519`);
      else if (key.size !== undefined && (typeof key.size !== "number" || !sizeOk(key.size))) problems.push(`spec.privateKey.size ${String(key.size)} does not suit ${String(algorithm)}`);
      if (key.encoding !== undefined && key.encoding !== "PKCS1" && key.encoding !== "PKCS8") problems.push("spec.privateKey.encoding must be PKCS1 or PKCS8");
      if (key.rotationPolicy !== undefined && key.rotationPolicy !== "Never" && key.rotationPolicy !== "Always") problems.push("spec.privateKey.rotationPolicy must be Never or Always");
    }
  }
}

function checkIssuer(spec: Record<string, unknown>, problems: string[]): void {
  unknownFields(spec, new Set(ISSUER_TYPES), "spec", problems);
  const types = ISSUER_TYPES.filter((t) => spec[t] !== undefined);
  if (types.length !== 1) problems.push(`an Issuer has exactly one of spec.${ISSUER_TYPES.join(", spec.")}; found ${types.length}`);
  if (spec.selfSigned !== undefined && !isRecord(spec.selfSigned)) problems.push("spec.selfSigned must be an object");
  if (spec.ca !== undefined && (!isRecord(spec.ca) || typeof spec.ca.secretName !== "string" || !DNS_SUBDOMAIN.test(spec.ca.secretName))) {
    problems.push("spec.ca.secretName is required: the Secret of the CA's certificate and key");
  }
}

/** Validates one cert-manager.io/v1 Issuer, ClusterIssuer or Certificate; other kinds are a problem, not a pass. */
export function validateCertManagerObject(object: unknown): SchemaResult {
  if (!isRecord(object)) return { ok: false, problems: ["not an object"] };
  const { apiVersion, kind, metadata, spec } = object;
  if (apiVersion !== "cert-manager.io/v1" || (kind !== "Issuer" && kind !== "ClusterIssuer" && kind !== "Certificate")) {
    return { ok: false, problems: [`no schema for ${String(apiVersion)} ${String(kind)}`] };
  }
  const problems: string[] = [];
  if (!isRecord(metadata) || typeof metadata.name !== "string" || !DNS_SUBDOMAIN.test(metadata.name) || metadata.name.length > 253) problems.push("metadata.name must be a DNS subdomain");
  if (!isRecord(spec)) problems.push("spec is required");
  else if (kind === "Certificate") checkCertificate(spec, problems);
  else checkIssuer(spec, problems);
  return { ok: problems.length === 0, problems };
}
