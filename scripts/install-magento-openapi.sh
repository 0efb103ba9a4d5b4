#!/usr/bin/env bash
# Adobe's generated OpenAPI 3.0 document "Commerce Admin REST endpoints - All inclusive"
# (Adobe Commerce 2.4.7 with B2B) for the Magento connector's contract tests and its test
# double (issue 19). It ships as scripts/m2rest-admin.json in the npm package
# @graphcommerce/magento-graphql-rest, fetched at a pinned version whose tarball is checked
# against the registry's sha512 integrity. Only that document, the package's package.json
# and README are unpacked (the package has no LICENSE file and no license field; the
# document is Adobe's), to a cache outside the repository; it is never committed. Prints
# the path of m2rest-admin.json last. Does nothing when it is there already.
set -euo pipefail
VERSION=10.0.3
INTEGRITY="sha512-CB2e1KhkJVCNYBJpBqdsCReqUVXID15ZLzFGIZ6e2tRJQlklARJ9vTy5Pdzad9wk3nkMBLxXdTHr0dLrGGWcvQ=="
# The document itself, so a tarball that passes its integrity check but carries another
# document (a future re-pin) is noticed: 9.0.4 and 10.0.3 ship this same file.
DOC_SHA256=eff935aab2bb079193a80048ecf6b2d5da69043932bd94b311c1c44096e27612
DEST="${STOCKYARD_MAGENTO_OPENAPI_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockyard/magento-graphql-rest-$VERSION}"
MARK="$DEST/scripts/m2rest-admin.json"
if [ -s "$MARK" ]; then
    echo "$MARK"
    exit 0
fi
# shellcheck source=lib/npm-pack.sh
. "$(dirname "$0")/lib/npm-pack.sh"
ensure_npm
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
TARBALL="$(npm_pack_checked "@graphcommerce/magento-graphql-rest@$VERSION" "$INTEGRITY" "$WORK")"
tar -xzf "$TARBALL" -C "$WORK" \
    package/scripts/m2rest-admin.json package/package.json package/README.md
DOC_ACTUAL="$(sha256sum "$WORK/package/scripts/m2rest-admin.json" | cut -d' ' -f1)"
if [ "$DOC_ACTUAL" != "$DOC_SHA256" ]; then
    echo "m2rest-admin.json: sha256 $DOC_ACTUAL, expected $DOC_SHA256" >&2
    exit 1
fi
# Into a sibling folder first, then renamed: a half-unpacked cache is never mistaken for one.
mkdir -p "$(dirname "$DEST")"
STAGE="$(mktemp -d "$(dirname "$DEST")/.magento-graphql-rest-$VERSION.XXXXXX")"
cp -r "$WORK/package/." "$STAGE/"
chmod 755 "$STAGE"
rm -rf "$DEST"
mv "$STAGE" "$DEST"
echo "$MARK"
