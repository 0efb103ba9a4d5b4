#!/usr/bin/env bash
# axe-core (MPL-2.0) for the console's accessibility tests (tests/support/axe.py), from
# the npm registry at a pinned version whose tarball is checked against the registry's
# sha512 integrity. It goes to a cache outside the repository and is never committed;
# the tests find it at the path printed last. Does nothing when it is there already.
set -euo pipefail
VERSION=4.14.1
INTEGRITY="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
DEST="${STOCKYARD_AXE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockyard/axe-core-$VERSION}"
if [ -s "$DEST/axe.min.js" ]; then
    echo "$DEST/axe.min.js"
    exit 0
fi
if ! command -v npm >/dev/null; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "axe-core@$VERSION" >/dev/null)
TARBALL="$WORK/axe-core-$VERSION.tgz"
ACTUAL="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
if [ "$ACTUAL" != "$INTEGRITY" ]; then
    echo "axe-core $VERSION: integrity $ACTUAL, expected $INTEGRITY" >&2
    exit 1
fi
tar -xzf "$TARBALL" -C "$WORK" package/axe.min.js package/LICENSE
mkdir -p "$DEST"
cp "$WORK/package/axe.min.js" "$WORK/package/LICENSE" "$DEST/"
echo "$DEST/axe.min.js"
