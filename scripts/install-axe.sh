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
# shellcheck source=lib/npm-pack.sh
. "$(dirname "$0")/lib/npm-pack.sh"
ensure_npm
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
TARBALL="$(npm_pack_checked "axe-core@$VERSION" "$INTEGRITY" "$WORK")"
tar -xzf "$TARBALL" -C "$WORK" package/axe.min.js package/LICENSE
mkdir -p "$DEST"
cp "$WORK/package/axe.min.js" "$WORK/package/LICENSE" "$DEST/"
echo "$DEST/axe.min.js"
