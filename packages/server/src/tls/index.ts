export {
  type CertificateWithKey,
  createCa,
  createClientCertificate,
  createNodeCertificate,
  DEFAULT_CA_VALID_DAYS,
  DEFAULT_LEAF_VALID_DAYS,
  MAX_VALID_DAYS,
} from "./cert-authority.ts";
export {
  CertificateFileExistsError,
  type CertificatePaths,
  caPaths,
  clientCertificatePaths,
  type DevCertificates,
  nodeCertificatePaths,
  readCertificateFiles,
  writeCertificateFiles,
  writeDevCertificates,
} from "./cert-files.ts";
export { commonNameOfCertificate, NODE_URI_PREFIX, nodeIdFromSubjectAltName, nodeIdOfCertificate, nodeUri } from "./cert-identity.ts";
