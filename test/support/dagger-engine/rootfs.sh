#!/usr/bin/env bash
# Builds, once, the root filesystem the engine stand-in uses for `container.from(node:24-bookworm-slim…)`:
# Debian bookworm's minimal base (debootstrap, as the official image's debian:bookworm-slim base)
# plus Node 24 and npm from the npm registry, at the paths the official image uses (/usr/local).
# Differences from the real image are listed in test/support/dagger-engine/README.md.
# Usage: rootfs.sh <cache-dir>; prints the rootfs path. Needs root, debootstrap, network to the
# Debian mirror and the npm registry. Idempotent: a finished rootfs is reused.
set -euo pipefail
cache=${1:-/var/cache/workers-pipeline-engine}
# Bump when the recipe changes: a new key is a new rootfs.
key=bookworm-node24-v1
dest="$cache/rootfs-$key"
if [ -f "$dest/.complete" ]; then echo "$dest"; exit 0; fi
mkdir -p "$cache"
exec 9>"$cache/rootfs.lock"
flock 9
if [ -f "$dest/.complete" ]; then echo "$dest"; exit 0; fi
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
tmp="$cache/rootfs-$key.tmp"
rm -rf "$tmp"
# python3, make and g++: the sandbox cannot reach GitHub, so better-sqlite3 compiles instead of
# downloading its prebuilt binary (the real image downloads it).
debootstrap --variant=minbase --include=python3,make,g++ bookworm "$tmp" "$mirror" >&2
case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) echo "no node for $(uname -m)" >&2; exit 2 ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "node-linux-$arch@24" >/dev/null && tar -xzf node-linux-*.tgz && mv package node)
npmv=${NPM_VERSION:-11}
(cd "$work" && npm pack --silent "npm@$npmv" >/dev/null && mkdir npm && tar -xzf npm-*.tgz -C npm --strip-components=1)
install -m 0755 "$work/node/bin/node" "$tmp/usr/local/bin/node"
mkdir -p "$tmp/usr/local/include" "$tmp/usr/local/lib/node_modules"
cp -a "$work/node/include/node" "$tmp/usr/local/include/"
cp -a "$work/npm" "$tmp/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$tmp/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$tmp/usr/local/bin/npx"
# node-gyp builds against the bundled headers instead of downloading them from nodejs.org.
mkdir -p "$tmp/usr/local/etc"
echo "nodedir=/usr/local" >"$tmp/usr/local/etc/npmrc"
# The official image's unprivileged user (uid/gid 1000), though it runs as root by default.
chroot "$tmp" /usr/sbin/groupadd --gid 1000 node
chroot "$tmp" /usr/sbin/useradd --uid 1000 --gid node --shell /bin/bash --create-home node
rm -rf "$tmp/var/cache/apt/archives"/*.deb "$tmp/var/lib/apt/lists"/*
chroot "$tmp" /usr/local/bin/node --version >"$tmp/.node-version"
touch "$tmp/.complete"
mv "$tmp" "$dest"
echo "$dest"
