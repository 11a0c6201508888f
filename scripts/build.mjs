// Bundles each runnable entry point into one ESM file under dist/, so it runs on plain Node
// without tsx.
import { build } from "esbuild";
import { entries, nativeExternals } from "./bundle-config.mjs";

await build({
  entryPoints: entries,
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  sourcemap: true,
  external: nativeExternals,
  // Bundled CommonJS dependencies still call require().
  banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  logLevel: "info",
});
