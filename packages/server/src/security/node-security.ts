// The node's TLS: mutual TLS on the peer port with certificates of the cluster's CA, TLS on the
// client port, and the credentials of every call the node makes to another node. Certificate
// files are re-read every `refreshMs`, so a renewed certificate takes effect without a restart.
// In insecure mode (--insecure) every port is plaintext and nobody is authenticated.
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { nodeIdOfCertificate } from "../tls/cert-identity.ts";

export type ClientCertAuth = "none" | "optional" | "require";

export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Certificate of the client port, when it is not the node's. */
  clientCertFile: string;
  clientKeyFile: string;
  /** CA of client certificates, when it is not the cluster's. */
  clientCaFile: string;
  clientCertAuth: ClientCertAuth;
  refreshMs: number;
}

export class TlsSetupError extends Error {
  override name = "TlsSetupError";
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsSetupError(`cannot read ${what} ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function parseCertificate(path: string, what: string): X509Certificate {
  try {
    return new X509Certificate(readPem(path, what));
  } catch (err) {
    if (err instanceof TlsSetupError) throw err;
    throw new TlsSetupError(`${what} ${path} is not a PEM certificate: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Checks a certificate, its key and its CA before anything listens, so a wrong file fails the
 * start with a message instead of every handshake later. Returns the node id the certificate names.
 */
export function checkCertificateFiles(caFile: string, certFile: string, keyFile: string, what: string): number {
  const ca = parseCertificate(caFile, "CA certificate");
  const cert = parseCertificate(certFile, `${what} certificate`);
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(readPem(keyFile, `${what} key`));
  } catch (err) {
    if (err instanceof TlsSetupError) throw err;
    throw new TlsSetupError(`${what} key ${keyFile} is not a PEM private key: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!cert.checkPrivateKey(key)) throw new TlsSetupError(`${what} key ${keyFile} does not belong to the certificate ${certFile}`);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new TlsSetupError(`${what} certificate ${certFile} is not signed by the CA ${caFile}`);
  const now = Date.now();
  if (Date.parse(cert.validTo) < now) throw new TlsSetupError(`${what} certificate ${certFile} expired on ${cert.validTo}`);
  return nodeIdOfCertificate({ subjectaltname: cert.subjectAltName ?? "" } as PeerCertificate);
}

/**
 * Whether a certificate naming node `certId` may act as node `id`: the same id; or, for a node of
 * a StatefulSet (`sameSlot`), an id of the same pod ordinal, since a pod that lost its volume
 * rejoins under a new id of its ordinal while its certificate names the ordinal's first.
 */
export type CertificateCoverage = (certId: number, id: number) => boolean;

export const exactId: CertificateCoverage = (certId, id) => certId > 0 && certId === id;

export interface NodeSecurity {
  /** True when started with --insecure: plaintext everywhere, nobody authenticated. */
  readonly insecure: boolean;
  /** Whether a certificate naming node `certId` may act as node `id`. */
  readonly covers: CertificateCoverage;
  /** The peer port: TLS with the node certificate; client certificates requested and checked per call. */
  peerServerCredentials(): grpc.ServerCredentials;
  /** A link to node `peerId`: mutual TLS, and the server's certificate must name that id. */
  peerChannelCredentials(peerId: number): grpc.ChannelCredentials;
  /** A call to any node of this cluster (a peer port, or a client port serving the node certificate). */
  nodeChannelCredentials(): grpc.ChannelCredentials;
  /** The client port. */
  clientServerCredentials(): grpc.ServerCredentials;
  /**
   * Channel options of calls to other nodes. Their certificates are checked by node id, not host
   * name, so the TLS server name is a fixed one rather than an IP address (which SNI forbids).
   */
  readonly channelOptions: grpc.ChannelOptions;
}

/** The TLS server name of calls between nodes. */
export const NODE_TLS_SERVER_NAME = "raftmq-node";

export const insecureSecurity: NodeSecurity = {
  insecure: true,
  covers: exactId,
  peerServerCredentials: () => grpc.ServerCredentials.createInsecure(),
  peerChannelCredentials: () => grpc.credentials.createInsecure(),
  nodeChannelCredentials: () => grpc.credentials.createInsecure(),
  clientServerCredentials: () => grpc.ServerCredentials.createInsecure(),
  channelOptions: {},
};

function identityError(expected: string, cert: PeerCertificate): Error {
  const named = nodeIdOfCertificate(cert);
  return new Error(`the server's certificate names ${named === 0 ? "no node" : `node ${named}`}, expected ${expected}`);
}


/** Mutual TLS with files re-read every refreshMs. Checks the files once, now. */
export function tlsSecurity(files: TlsFiles, selfId: number, covers: CertificateCoverage = exactId): NodeSecurity {
  const named = checkCertificateFiles(files.caFile, files.certFile, files.keyFile, "node");
  if (!covers(named, selfId)) {
    throw new TlsSetupError(
      named === 0
        ? `node certificate ${files.certFile} names no node id (it needs the URI SAN urn:raftmq:node:${selfId}; \`raftmq cert create-node\` makes one)`
        : `node certificate ${files.certFile} names node ${named}, but this is node ${selfId}`,
    );
  }
  const separateClientCert = files.clientCertFile !== "" || files.clientKeyFile !== "";
  if (separateClientCert && (files.clientCertFile === "" || files.clientKeyFile === "")) {
    throw new TlsSetupError("client-tls-cert-file and client-tls-key-file go together");
  }
  const clientCaFile = files.clientCaFile === "" ? files.caFile : files.clientCaFile;
  if (files.clientCaFile !== "") parseCertificate(files.clientCaFile, "client CA certificate");
  if (separateClientCert) parseCertificate(files.clientCertFile, "client-port certificate");

  const refreshIntervalMs = files.refreshMs;
  const ca = new grpc.experimental.FileWatcherCertificateProvider({ caCertificateFile: files.caFile, refreshIntervalMs });
  const identity = new grpc.experimental.FileWatcherCertificateProvider({ certificateFile: files.certFile, privateKeyFile: files.keyFile, refreshIntervalMs });
  const clientIdentity = separateClientCert
    ? new grpc.experimental.FileWatcherCertificateProvider({ certificateFile: files.clientCertFile, privateKeyFile: files.clientKeyFile, refreshIntervalMs })
    : identity;
  const clientCa = files.clientCaFile === "" ? ca : new grpc.experimental.FileWatcherCertificateProvider({ caCertificateFile: clientCaFile, refreshIntervalMs });

  const perPeer = new Map<number, grpc.ChannelCredentials>();
  let anyNode: grpc.ChannelCredentials | null = null;
  return {
    insecure: false,
    covers,
    channelOptions: { "grpc.ssl_target_name_override": NODE_TLS_SERVER_NAME },
    // Client certificates are requested but not demanded at the handshake, so that a caller
    // without one reaches a handler that logs who it was and refuses it.
    peerServerCredentials: () => grpc.experimental.createCertificateProviderServerCredentials(identity, ca, false),
    peerChannelCredentials: (peerId) => {
      let creds = perPeer.get(peerId);
      if (creds === undefined) {
        creds = grpc.experimental.createCertificateProviderChannelCredentials(ca, identity, {
          checkServerIdentity: (_host, cert) => (covers(nodeIdOfCertificate(cert), peerId) ? undefined : identityError(`node ${peerId}`, cert)),
        });
        perPeer.set(peerId, creds);
      }
      return creds;
    },
    nodeChannelCredentials: () => {
      anyNode ??= grpc.experimental.createCertificateProviderChannelCredentials(ca, identity, {
        checkServerIdentity: (_host, cert) => (nodeIdOfCertificate(cert) > 0 ? undefined : identityError("a node of this cluster", cert)),
      });
      return anyNode;
    },
    clientServerCredentials: () =>
      files.clientCertAuth === "none"
        ? grpc.experimental.createCertificateProviderServerCredentials(clientIdentity, null, false)
        : grpc.experimental.createCertificateProviderServerCredentials(clientIdentity, clientCa, files.clientCertAuth === "require"),
  };
}
