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
  # `npm ci` installs exactly the locked tree and fails if package.json and the lockfile disagree.
  # The lockfile records every platform's optional builds (workerd, esbuild, biome, ...), so
  # the same command works on macOS, Windows and Linux; test/pkg/lockfile.test.ts guards it.
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
[ "$#" -eq 0 ] || exec "$@"
