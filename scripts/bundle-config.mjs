// What `pnpm build` bundles, and what it leaves out: packages that load a native addon from
// their own folder. The container image installs exactly these next to the bundles. The node
// itself is not bundled: grpc-js, @grpc/reflection, grpc-health-check and pino read files
// relative to their own modules at run time.
export const entries = {
  "raftmq-sim": "packages/raft/sim/cli.ts",
  "raftmq-sim-demo": "packages/raft/sim/demo.ts",
};

export const nativeExternals = ["classic-level", "@node-rs/crc32"];
