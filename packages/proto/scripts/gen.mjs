// Generates static protobufjs code and its TypeScript declarations from proto/raftmq/v1, and
// copies the .proto files into gen/proto, where the package's users (gRPC reflection) find them
// in every layout, a deployed one included. Skips the code generation when the generated files
// are newer than every .proto file.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const protoRoot = resolve(pkg, "../../proto");
const protoDir = join(protoRoot, "raftmq/v1");
const out = join(pkg, "gen");
const js = join(out, "raftmq.js");
const dts = join(out, "raftmq.d.ts");
const protos = readdirSync(protoDir)
  .filter((f) => f.endsWith(".proto"))
  .sort()
  .map((f) => join(protoDir, f));

const protoCopies = join(out, "proto", "raftmq", "v1");
mkdirSync(protoCopies, { recursive: true });
for (const f of protos) copyFileSync(f, join(protoCopies, f.slice(protoDir.length + 1)));

const newest = Math.max(...protos.map((f) => statSync(f).mtimeMs), statSync(import.meta.filename).mtimeMs);
if (existsSync(js) && existsSync(dts) && statSync(js).mtimeMs > newest && statSync(dts).mtimeMs > newest) {
  process.exit(0);
}
mkdirSync(out, { recursive: true });
const bin = (name) => join(pkg, "node_modules", ".bin", name);
execFileSync(
  bin("pbjs"),
  ["-p", protoRoot, "-t", "static-module", "-w", "es6", "--force-number", "--no-verify", "--no-delimited", "--no-service", "-o", js, ...protos],
  { stdio: "inherit" },
);
execFileSync(bin("pbts"), ["--no-comments", "-o", dts, js], { stdio: "inherit" });
