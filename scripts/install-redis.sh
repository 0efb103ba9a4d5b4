#!/usr/bin/env bash
# Install Debian's redis-server if it is missing: bench/peers.py measures Dramatiq on it
# (started on 127.0.0.1 and a free port by the benchmark, stopped afterwards); nothing here
# starts a system service. Only the peer benchmark needs it.
set -euo pipefail
if command -v redis-server >/dev/null; then
    exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    SUDO="sudo"
fi
echo "installing redis-server (Debian package)..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
# Debian's package starts a system service; the benchmark runs its own.
$SUDO systemctl disable --now redis-server >/dev/null 2>&1 || $SUDO service redis-server stop >/dev/null 2>&1 || true
