// The remote IP of a gRPC call, from the peer string the transport reports, and whether it is the
// loopback interface (where loopback-only users such as "guest" may log in from).
import { BlockList, isIPv4, isIPv6 } from "node:net";

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/**
 * The IP address of a peer string without its port, or undefined when there is none. Accepted:
 * - grpc-js `call.getPeer()`: "127.0.0.1:5555", and "::1:5555" (IPv6 unbracketed, port last);
 * - bracketed "[::1]:5555" and "[::1]";
 * - gRPC core URIs "ipv4:127.0.0.1:5555", "ipv6:[::1]:5555", "ipv6:%5B::1%5D:5555";
 * - a bare IPv4 address.
 * An unbracketed IPv6 string is always read as address then port (grpc-js adds the port of every
 * TCP peer), so a bare "::1" reads as "::" port 1: not loopback, which fails safe.
 * IPv4-mapped IPv6 ("::ffff:10.0.0.1") comes back as the IPv4 address.
 */
export function peerIp(peer: string): string | undefined {
  if (typeof peer !== "string") return undefined;
  let s = peer.trim();
  if (s.startsWith("ipv4:")) s = s.slice(5);
  else if (s.startsWith("ipv6:")) s = safeDecode(s.slice(5));
  // "unix:/path" and other schemes; a leading group of hex digits is the start of an IPv6 address.
  else if (/^[a-z][a-z0-9+.-]*:/i.test(s) && !/^[0-9a-f]{1,4}:/i.test(s)) return undefined;
  let ip: string | undefined;
  if (s.startsWith("[")) {
    const end = s.indexOf("]");
    if (end < 0) return undefined;
    const rest = s.slice(end + 1);
    if (rest !== "" && !/^:\d{1,5}$/.test(rest)) return undefined;
    ip = s.slice(1, end);
  } else if (isIPv4(s)) {
    ip = s;
  } else {
    const colon = s.lastIndexOf(":");
    if (colon <= 0 || !/^\d{1,5}$/.test(s.slice(colon + 1))) return undefined;
    ip = s.slice(0, colon);
  }
  // A zone index ("fe80::1%eth0") names an interface, not a different host.
  const zone = ip.indexOf("%");
  if (zone >= 0) ip = ip.slice(0, zone);
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return undefined;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  return mapped?.[1] !== undefined && isIPv4(mapped[1]) ? mapped[1] : ip.toLowerCase();
}

/** 127.0.0.0/8, ::1 and IPv4-mapped loopback. Unparseable peers (and unix sockets) are not loopback. */
export function isLoopbackAddress(peer: string): boolean {
  const ip = peerIp(peer);
  if (ip === undefined) return false;
  return LOOPBACK.check(ip, isIPv4(ip) ? "ipv4" : "ipv6");
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
