#!/bin/sh
# Assembles the node's runtime folder from a checkout of the repository (run at its root):
# the raftmq CLI with its production node_modules, the workspace packages copied in (with the
# generated protobuf code and the .proto files the node serves over reflection), and the preStop
# script. The image's build stage runs
# this; test/k8s/runtime-image.test.ts runs it too and starts a node from the result alone.
#   sh deploy/docker/assemble-runtime.sh /out
set -eu
out="${1:?usage: assemble-runtime.sh <output folder>}"

pnpm install --frozen-lockfile
pnpm gen
# deploy copies the workspace packages into the folder (no links back to the checkout) and
# installs only production dependencies: grpc-js, pino and friends keep the files they read
# next to their own modules.
pnpm --filter @raftmq/cli deploy --prod "$out"

# The node serves gRPC reflection from the .proto copies that `pnpm gen` put into @raftmq/proto.
set -- "$out"/node_modules/.pnpm/@raftmq+proto@*/node_modules/@raftmq/proto/gen/proto/raftmq/v1/broker.proto
if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
  echo "assemble-runtime: expected the .proto files in the deployed @raftmq/proto, found: $*" >&2
  exit 1
fi

cp deploy/docker/prestop-transfer.mjs "$out/prestop-transfer.mjs"
# Lockfile and workspace manifest of the deploy are not needed to run.
rm -f "$out/pnpm-lock.yaml" "$out/pnpm-workspace.yaml"
