#!/usr/bin/env bash
# Installs the locked dependencies when node_modules is missing or was installed from another
# lockfile or Node major, then runs the given command. Called through scripts/node24.sh.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
want="$(sha256sum "$root/package-lock.json" | cut -d' ' -f1) node$(node -p 'process.versions.modules')"
stamp="$root/node_modules/.workers-pipeline-install"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "workers-pipeline: installing the locked dependencies with Node $(node --version)" >&2
  if [ -n "${WORKERS_PIPELINE_NODEDIR:-}" ]; then export npm_config_nodedir="$WORKERS_PIPELINE_NODEDIR"; fi
  # `npm install --no-save` installs exactly the locked tree and never rewrites the lockfile.
  # (`npm ci` refuses this lockfile: the registry here lacks some optional per-platform builds
  # for other systems, e.g. @biomejs/cli-android-arm64@2.6.8, so npm cannot record them.)
  (cd "$root" && npm install --no-save --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
[ "$#" -eq 0 ] || exec "$@"
