// Who a verified TLS certificate names. A node certificate carries its node id as the URI
// subject-alternative name `urn:raftmq:node:<id>`; a user certificate names its user in its
// subject's common name, as RabbitMQ's EXTERNAL mechanism does by default.
import type { PeerCertificate } from "node:tls";

export const NODE_ID_URI_PREFIX = "urn:raftmq:node:";

/** The URI SAN that names node `id`. */
export function nodeIdUri(id: number): string {
  return `${NODE_ID_URI_PREFIX}${id}`;
}

/**
 * The node id a certificate names, or 0 when it names none (a user's certificate). A
 * certificate that names two different node ids names none: it is refused as a node's.
 */
export function nodeIdOfCertificate(cert: Pick<PeerCertificate, "subjectaltname"> | undefined): number {
  const san = cert?.subjectaltname;
  if (typeof san !== "string" || san === "") return 0;
  let found = 0;
  for (const part of san.split(",")) {
    const entry = part.trim();
    if (!entry.startsWith(`URI:${NODE_ID_URI_PREFIX}`)) continue;
    const text = entry.slice(4 + NODE_ID_URI_PREFIX.length);
    if (!/^[1-9][0-9]{0,15}$/.test(text)) return 0;
    const id = Number(text);
    if (!Number.isSafeInteger(id)) return 0;
    if (found !== 0 && found !== id) return 0;
    found = id;
  }
  return found;
}

/** The subject common name of a certificate, or "" when it has none. */
export function commonNameOfCertificate(cert: Pick<PeerCertificate, "subject"> | undefined): string {
  const cn = cert?.subject?.CN;
  if (typeof cn === "string") return cn;
  if (Array.isArray(cn)) return cn.length === 1 ? String(cn[0]) : "";
  return "";
}
