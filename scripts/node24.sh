#!/usr/bin/env bash
# Runs a command with Node >= 22 first on PATH. When the machine's Node is older, Node 24 is
# fetched once from the npm registry (package node-linux-<arch>) into .tools/node, and native
# addons (better-sqlite3) are compiled against its headers through npm_config_nodedir.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 22 ]; then
  tooldir="$root/.tools/node"
  if [ ! -x "$tooldir/bin/node" ]; then
    case "$(uname -m)" in
      x86_64) arch=x64 ;;
      aarch64 | arm64) arch=arm64 ;;
      *) echo "workers-pipeline: no Node 24 package for $(uname -m); install Node >= 22 yourself" >&2; exit 2 ;;
    esac
    echo "workers-pipeline: Node $(node --version 2>/dev/null || echo none) is older than 22; fetching node-linux-$arch@24 from the npm registry" >&2
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "node-linux-$arch@24" >/dev/null)
    tar -xzf "$tmp"/node-linux-"$arch"-*.tgz -C "$tmp"
    mkdir -p "$root/.tools"
    rm -rf "$tooldir"
    mv "$tmp/package" "$tooldir"
  fi
  export PATH="$tooldir/bin:$PATH"
  # Only npm install/ci need the headers; set for every npm it would make npm warn on each call.
  export WORKERS_PIPELINE_NODEDIR="$tooldir"
  if [ "${1:-}" = npm ]; then export npm_config_nodedir="$tooldir"; fi
fi
exec "$@"
