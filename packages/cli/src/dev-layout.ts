// Where `raftmq dev` puts its nodes, and so where raftmqctl looks by default.

export const DEV_HOST = "127.0.0.1";
export const DEV_NODES = 3;
export const DEV_CLIENT_PORT_BASE = 7601;
export const DEV_PEER_PORT_BASE = 7701;
export const DEV_HTTP_PORT_BASE = 7801;

export interface DevNode {
  id: number;
  clientPort: number;
  peerPort: number;
  httpPort: number;
}

export function devNodes(count: number, bases: { client: number; peer: number; http: number }): DevNode[] {
  return Array.from({ length: count }, (_, i) => ({ id: i + 1, clientPort: bases.client + i, peerPort: bases.peer + i, httpPort: bases.http + i }));
}

/** The client addresses of a default `raftmq dev` cluster. */
export const DEV_ADDRESSES = devNodes(DEV_NODES, { client: DEV_CLIENT_PORT_BASE, peer: DEV_PEER_PORT_BASE, http: DEV_HTTP_PORT_BASE }).map(
  (n) => `${DEV_HOST}:${n.clientPort}`,
);
