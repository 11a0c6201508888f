// Reads a 64-bit protobuf field as a number: decoded messages carry numbers (see @raftmq/proto),
// while commands built in code may leave the field out.

export function int64(v: number | null | undefined): number {
  if (v == null) return 0;
  if (typeof v !== "number") throw new TypeError(`expected a 64-bit field as a number, got ${typeof v}`);
  return v;
}
