// Headers exchange matching, RabbitMQ's rules: x-match "all" (default) needs every binding
// argument present and equal, "any" needs one; arguments starting with "x-" are ignored unless
// x-match is "all-with-x" / "any-with-x". An argument with no value matches on presence.
import type { raftmq } from "@raftmq/proto";

type Header = raftmq.v1.Header.$Properties;
type HeaderValue = raftmq.v1.HeaderValue.$Properties;

export type XMatch = "all" | "any" | "all-with-x" | "any-with-x";

export interface HeadersMatcher {
  mode: XMatch;
  pairs: { key: string; value: HeaderValue | null }[];
}

export function parseXMatch(args: readonly Header[]): XMatch | null {
  const xm = args.find((h) => h.key === "x-match");
  if (xm === undefined) return "all";
  const s = xm.value?.stringValue;
  if (s === "all" || s === "any" || s === "all-with-x" || s === "any-with-x") return s;
  return null;
}

export function compileHeadersMatcher(args: readonly Header[]): HeadersMatcher {
  const mode = parseXMatch(args) ?? "all";
  const withX = mode === "all-with-x" || mode === "any-with-x";
  const pairs: HeadersMatcher["pairs"] = [];
  for (const h of args) {
    const key = h.key ?? "";
    if (key === "x-match") continue;
    if (!withX && key.startsWith("x-")) continue;
    pairs.push({ key, value: hasValue(h.value) ? (h.value ?? null) : null });
  }
  return { mode, pairs };
}

export function headersMatch(m: HeadersMatcher, headers: readonly Header[] | null | undefined): boolean {
  const all = m.mode === "all" || m.mode === "all-with-x";
  if (m.pairs.length === 0) return all;
  const hs = headers ?? [];
  for (const p of m.pairs) {
    const h = hs.find((x) => x.key === p.key);
    const hit = h !== undefined && (p.value === null || headerValueEquals(p.value, h.value));
    if (all && !hit) return false;
    if (!all && hit) return true;
  }
  return all;
}

function hasValue(v: HeaderValue | null | undefined): boolean {
  return headerValueKey(v) !== "";
}

/** A canonical string of a header value: equal values, equal strings. */
export function headerValueKey(v: HeaderValue | null | undefined): string {
  if (v == null) return "";
  if (v.stringValue != null) return `s:${v.stringValue}`;
  if (v.intValue != null) return `i:${v.intValue}`;
  if (v.boolValue != null) return `b:${v.boolValue}`;
  if (v.doubleValue != null) return `d:${v.doubleValue}`;
  if (v.bytesValue != null) return `x:${Buffer.from(v.bytesValue).toString("hex")}`;
  if (v.amqpField != null) return `a:${Buffer.from(v.amqpField).toString("hex")}`;
  return "";
}

export function headerValueEquals(a: HeaderValue | null | undefined, b: HeaderValue | null | undefined): boolean {
  return headerValueKey(a) === headerValueKey(b);
}

/** A canonical string of an argument list, for binding identity. */
export function argumentsKey(args: readonly Header[]): string {
  return args.map((h) => `${JSON.stringify(h.key ?? "")}=${headerValueKey(h.value)}`).join(",");
}
