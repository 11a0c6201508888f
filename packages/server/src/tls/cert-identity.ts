// Who a certificate names: a node by the URI in its subjectAltName (never by its common name or
// host names, which an operator may reuse across nodes), a user by its subject common name.
import type { PeerCertificate } from "node:tls";

export const NODE_URI_PREFIX = "urn:raftmq:node:";

/** The subjectAltName URI that is a node's authoritative identity. */
export function nodeUri(nodeId: number): string {
  checkNodeId(nodeId);
  return `${NODE_URI_PREFIX}${nodeId}`;
}

export function nodeCommonName(nodeId: number): string {
  checkNodeId(nodeId);
  return `raftmq-node-${nodeId}`;
}

export function checkNodeId(nodeId: number): void {
  if (!Number.isSafeInteger(nodeId) || nodeId < 1) throw new RangeError(`a node id must be a positive integer, got ${nodeId}`);
}

const NODE_URI_ENTRY = /^URI:urn:raftmq:node:([1-9][0-9]{0,15})$/;

/**
 * The node id in a subjectAltName as Node.js prints it (`X509Certificate.subjectAltName`, or
 * `subjectaltname` of a TLS peer certificate): "URI:urn:raftmq:node:3, DNS:localhost, …".
 * Undefined when it names no node, or more than one: such a certificate identifies nobody.
 */
export function nodeIdFromSubjectAltName(subjectAltName: string | undefined): number | undefined {
  if (subjectAltName === undefined) return undefined;
  // Node.js quotes a value holding ", ", so splitting on it cannot cut a value in two that matters here.
  const ids = subjectAltName
    .split(", ")
    .map((entry) => NODE_URI_ENTRY.exec(entry)?.[1])
    .filter((id): id is string => id !== undefined)
    .map(Number);
  const distinct = new Set(ids);
  if (distinct.size !== 1) return undefined;
  const id = ids[0];
  return id !== undefined && Number.isSafeInteger(id) ? id : undefined;
}

/** The node id a verified peer certificate names, or 0 when it names none (a user's certificate). */
export function nodeIdOfCertificate(cert: Pick<PeerCertificate, "subjectaltname"> | undefined): number {
  return nodeIdFromSubjectAltName(cert?.subjectaltname) ?? 0;
}

/** The subject common name of a certificate, or "" when it has none: the user of a client certificate. */
export function commonNameOfCertificate(cert: Pick<PeerCertificate, "subject"> | undefined): string {
  const cn = cert?.subject?.CN;
  if (typeof cn === "string") return cn;
  if (Array.isArray(cn)) return cn.length === 1 ? String(cn[0]) : "";
  return "";
}
