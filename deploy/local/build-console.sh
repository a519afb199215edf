#!/usr/bin/env bash
# Build the web console (console/ -> console/dist), served by the gateway under /console/.
# Installs Node.js from the machine's Debian packages if it is missing, as ensure-services.sh does
# PostgreSQL. The API's TypeScript types are generated from the OpenAPI document first, so a contract
# change that the pages do not follow fails this build, not its users.
set -euo pipefail
cd "$(dirname "$0")/../.."
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
say() { printf '[console] %s\n' "$*"; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "installing Node.js from Debian packages"
  $SUDO apt-get update -qq
  # Where apt knows a Node.js that ships npm itself (NodeSource), npm is no package of its own.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs >/dev/null
  command -v npm >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null
fi
# Vite needs Node.js 20.19 or newer. Debian 12's own nodejs is 18: where apt offers no newer one (NodeSource's
# repository, or Debian 13's), install one from there and run this again.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  say "Node.js $(node --version) is too old: Vite needs 20.19 or newer (NodeSource's nodejs package, or Debian 13's)."
  exit 1
fi

.venv/bin/linli openapi > console/openapi.json
cd console
# npm ci only when the lockfile changed since the last install: it starts from an empty node_modules.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing the console's packages (package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent types >/dev/null
npm run --silent build >/dev/null
say "built console/dist ($(du -sh dist | cut -f1); served at /console/)"
