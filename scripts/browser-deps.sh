#!/usr/bin/env bash
# Installs what the dashboard's browser test needs: Debian's chromium (run as
# root so it gets installed) and the pinned playwright-core of
# tests/browser/package-lock.json, into tests/browser/node_modules.
# Idempotent: apt-get runs only when chromium is missing, npm only when
# node_modules does not match the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q '^install ok installed$' || missing+=(chromium)
# node and npm may come from elsewhere than Debian (a newer nodejs ships its
# own npm and conflicts with Debian's npm package): only ask for them when
# the commands are missing.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "browser-deps.sh: missing Debian packages: ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "browser-deps.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm writes node_modules/.package-lock.json on install: equal to the lock's
# packages means the tree is what the lock pins.
dir=tests/browser
stamp=$dir/node_modules/.lock-sha256
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$dir/node_modules/playwright-core" ]]; then
  exit 0
fi
(cd "$dir" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error)
echo "$want" >"$stamp"
