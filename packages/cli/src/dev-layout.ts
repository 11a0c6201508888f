// Where `raftmq dev` puts its nodes, and so where raftmqctl looks by default.

export const DEV_HOST = "127.0.0.1";
export const DEV_NODES = 3;
/** Plaintext client ports, on 127.0.0.1 only; the members advertise these. */
export const DEV_CLIENT_PORT_BASE = 7601;
/** TLS client ports beside them. */
export const DEV_TLS_CLIENT_PORT_BASE = 7611;
export const DEV_PEER_PORT_BASE = 7701;
export const DEV_HTTP_PORT_BASE = 7801;
/** AMQP 0-9-1 on 127.0.0.1, from RabbitMQ's own port on: a script written for a local RabbitMQ runs as it is. */
export const DEV_AMQP_PORT_BASE = 5672;
/** AMQP 0-9-1 over TLS. */
export const DEV_AMQPS_PORT_BASE = 5681;

export interface DevNode {
  id: number;
  clientPort: number;
  tlsClientPort: number;
  peerPort: number;
  httpPort: number;
  amqpPort: number;
  amqpsPort: number;
}

export interface DevPortBases {
  client: number;
  tlsClient: number;
  peer: number;
  http: number;
  amqp: number;
  amqps: number;
}

export function devNodes(count: number, bases: DevPortBases): DevNode[] {
  return Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    clientPort: bases.client + i,
    tlsClientPort: bases.tlsClient + i,
    peerPort: bases.peer + i,
    httpPort: bases.http + i,
    amqpPort: bases.amqp + i,
    amqpsPort: bases.amqps + i,
  }));
}

/** The user `raftmq dev` creates, like RabbitMQ's: it may log in from a loopback address only. */
export const DEV_USER = "guest";
export const DEV_PASSWORD = "guest";

/** The client addresses of a default `raftmq dev` cluster. */
export const DEV_ADDRESSES = devNodes(DEV_NODES, {
  client: DEV_CLIENT_PORT_BASE,
  tlsClient: DEV_TLS_CLIENT_PORT_BASE,
  peer: DEV_PEER_PORT_BASE,
  http: DEV_HTTP_PORT_BASE,
  amqp: DEV_AMQP_PORT_BASE,
  amqps: DEV_AMQPS_PORT_BASE,
}).map(
  (n) => `${DEV_HOST}:${n.clientPort}`,
);
