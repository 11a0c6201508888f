// What `pnpm build` bundles, and what it leaves out: packages that load a native addon from
// their own folder. The node itself is not bundled: grpc-js, @grpc/reflection, grpc-health-check
// and pino read files relative to their own modules at run time, so the container image carries
// the node with its node_modules instead (deploy/docker/assemble-runtime.sh).
export const entries = {
  "raftmq-sim": "packages/raft/sim/cli.ts",
  "raftmq-sim-demo": "packages/raft/sim/demo.ts",
};

export const nativeExternals = ["classic-level", "@node-rs/crc32"];
