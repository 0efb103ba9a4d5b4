#!/usr/bin/env bash
# Vendure for the ERP-to-shop demo and tests: `npm ci` from the committed lock file, once
# and again whenever the lock file changes.
set -euo pipefail
cd "$(dirname "$0")/../systems/vendure"
stamp=node_modules/.stockyard-installed
if [[ -f $stamp ]] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
if ! command -v npm > /dev/null; then
  echo "install-vendure: Node.js 20+ and npm are needed (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
echo "vendure: $(node -p "require('@vendure/core/package.json').version")"
