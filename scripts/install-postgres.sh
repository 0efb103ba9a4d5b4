#!/usr/bin/env bash
# Install Debian's PostgreSQL server binaries if they are missing. The tests start their
# own throwaway server from them (systems/postgres.py) and stop it afterwards; nothing here starts
# a system service. Skipped when STOCKYARD_TEST_POSTGRES_URL points at a server already.
set -euo pipefail
if [[ -n "${STOCKYARD_TEST_POSTGRES_URL:-}" ]] || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    SUDO="sudo"
fi
echo "installing PostgreSQL (Debian package)..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
