// V8 flags a node's process starts with, the way a JVM server is given -Xms. They must be on the
// node command line: NODE_OPTIONS does not accept them, and setting them once the process runs
// has no effect. `raftmq dev` and the container image pass them.
//
// --initial-old-space-size: the old generation starts at 256 MiB instead of growing from a few
// MiB. A young node otherwise runs a full collection every ~100 ms under load (seen with
// --trace-gc: eight to seventeen per node in the first 15 s, pausing 4-15 ms each), and each pause
// holds up every message in flight. At a fixed 5,000 msg/s (publish to delivery, 3 nodes, fresh
// clusters, two runs each, alternated), the median p99 went from 21.4 ms (12 runs) to 15.6 ms
// (10 runs); the memory a node takes under load grows by at most that much.
export const NODE_V8_FLAGS: readonly string[] = ["--initial-old-space-size=256"];
