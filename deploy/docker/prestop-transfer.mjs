// preStop hook of a raftmq pod: when this node leads, hand leadership to another voter and wait
// until it has moved, so the SIGTERM that follows stops a follower and clients see no election.
// No dependencies: it speaks gRPC over node:http2 to the node's own client port, and both
// messages it sends (StatusRequest, TransferLeadershipRequest{to: 0}) encode to zero bytes.
// With the node's TLS files in its environment (the hook runs with the container's env) it
// connects with mutual TLS as the node itself: a node certificate may call anything.
import { readFileSync } from "node:fs";
import http2 from "node:http2";

const port = Number(process.env.RAFTMQ_CLIENT_PORT ?? "7600");
// The node listens on RAFTMQ_HOST; on every interface (the pod's case) loopback reaches it.
const listenHost = process.env.RAFTMQ_HOST ?? "";
const hostOnly = listenHost === "" || listenHost === "0.0.0.0" || listenHost === "::" ? "127.0.0.1" : listenHost;
const host = hostOnly.includes(":") ? `[${hostOnly}]` : hostOnly;
const insecure = /^(true|1|yes)$/i.test((process.env.RAFTMQ_INSECURE ?? "").trim());
const caFile = process.env.RAFTMQ_TLS_CA_FILE ?? "";
const timeoutMs = Number(process.env.RAFTMQ_PRESTOP_TIMEOUT_MS ?? "10000");
const pollMs = 200;
const deadline = Date.now() + timeoutMs;

/** One unary gRPC call with an empty request; resolves to the response message bytes. */
function call(session, method) {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":method": "POST", ":path": `/raftmq.v1.Cluster/${method}`, "content-type": "application/grpc", te: "trailers" });
    req.setTimeout(Math.max(1, deadline - Date.now()), () => req.close(http2.constants.NGHTTP2_CANCEL));
    const chunks = [];
    let status;
    let message = "";
    req.on("response", (headers) => {
      if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"]);
    });
    req.on("trailers", (trailers) => {
      status = String(trailers["grpc-status"] ?? "");
      message = String(trailers["grpc-message"] ?? "");
    });
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("error", reject);
    req.on("close", () => {
      if (status !== "0") {
        reject(new Error(`${method}: grpc-status ${status ?? "missing"} ${decodeURIComponent(message)}`));
        return;
      }
      const body = Buffer.concat(chunks);
      if (body.length < 5 || body[0] !== 0) {
        reject(new Error(`${method}: malformed or compressed response frame`));
        return;
      }
      resolve(body.subarray(5, 5 + body.readUInt32BE(1)));
    });
    // The length-prefixed frame of an empty message: not compressed, length 0.
    req.end(Buffer.alloc(5));
  });
}

/** The varint fields of a protobuf message's top level, by field number; other fields skipped. */
function varintFields(bytes) {
  const fields = new Map();
  let i = 0;
  const varint = () => {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (i >= bytes.length) throw new Error("truncated varint");
      const b = bytes[i++];
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
    }
  };
  while (i < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    switch (key % 8) {
      case 0:
        fields.set(field, varint());
        break;
      case 1:
        i += 8;
        break;
      case 2: {
        // Read the length first: `i += varint()` would add it to i as it was before the length.
        const length = varint();
        i += length;
        break;
      }
      case 5:
        i += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${key % 8}`);
    }
    if (i > bytes.length) throw new Error("field runs past the end of the message");
  }
  return fields;
}

// StatusResponse: node_id = 1, leader_id = 4.
async function leadership(session) {
  const fields = varintFields(await call(session, "Status"));
  return { nodeId: fields.get(1) ?? 0, leaderId: fields.get(4) ?? 0 };
}

const NODE_URI = /(^|, )URI:urn:raftmq:node:[1-9]\d*(,|$)/;

/**
 * Plaintext with --insecure; otherwise TLS, trusting the cluster CA and presenting the node's own
 * certificate. (A client port serving its own client-tls-cert-file, which names no node, would
 * need this hook to trust that certificate instead; deploy/k8s does not use one.)
 */
function connect() {
  if (insecure || caFile === "") return http2.connect(`http://${host}:${port}`);
  return http2.connect(`https://${host}:${port}`, {
    ca: readFileSync(caFile),
    cert: readFileSync(process.env.RAFTMQ_TLS_CERT_FILE ?? ""),
    key: readFileSync(process.env.RAFTMQ_TLS_KEY_FILE ?? ""),
    ALPNProtocols: ["h2"],
    // The address is our own loopback, in no certificate: as a node does when it calls any node,
    // accept a CA-signed certificate that names a node.
    checkServerIdentity: (_host, cert) => (NODE_URI.test(cert.subjectaltname ?? "") ? undefined : new Error("the client port's certificate names no raftmq node")),
  });
}

async function main() {
  const session = connect();
  session.on("error", () => undefined);
  try {
    // Wait for the connection first, so a refused certificate is reported as such.
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection to ${host}:${port} within ${timeoutMs} ms`)), Math.max(1, deadline - Date.now()));
      session.once("connect", () => {
        clearTimeout(timer);
        resolve(undefined);
      });
      session.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    let { nodeId, leaderId } = await leadership(session);
    if (nodeId === 0 || leaderId !== nodeId) {
      process.stderr.write(`prestop: node ${nodeId} does not lead (leader ${leaderId}); nothing to hand over\n`);
      return 0;
    }
    await call(session, "TransferLeadership");
    while (leaderId === nodeId && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, pollMs));
      try {
        ({ leaderId } = await leadership(session));
      } catch (err) {
        // A poll cut off by the deadline only means the hand-over did not finish in time.
        if (Date.now() >= deadline) break;
        throw err;
      }
    }
    if (leaderId === nodeId) {
      process.stderr.write(`prestop: node ${nodeId} still leads after ${timeoutMs} ms; SIGTERM will try again\n`);
      return 1;
    }
    process.stderr.write(`prestop: node ${nodeId} handed leadership to ${leaderId}\n`);
    return 0;
  } finally {
    session.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`prestop: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
