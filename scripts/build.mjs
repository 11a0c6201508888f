// Bundles each runnable entry point into one ESM file under dist/, so it runs on plain Node
// without tsx. classic-level stays external: it loads a native addon next to its own files.
import { build } from "esbuild";

const entries = {
  "raftmq-sim": "packages/raft/sim/cli.ts",
  "raftmq-sim-demo": "packages/raft/sim/demo.ts",
};

await build({
  entryPoints: entries,
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  sourcemap: true,
  external: ["classic-level"],
  // Bundled CommonJS dependencies still call require().
  banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  logLevel: "info",
});
