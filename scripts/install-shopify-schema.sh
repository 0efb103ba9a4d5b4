#!/usr/bin/env bash
# Shopify's Admin GraphQL schema (introspection JSON, one file per API version) for the
# Shopify connector's contract tests and its test double (issue 18). It ships in the npm
# package @shopify/dev-mcp (ISC), fetched at a pinned version whose tarball is checked
# against the registry's sha512 integrity. Only the Admin schemas, the package's notes on
# the Admin API, its LICENSE and README are unpacked, to a cache outside the repository;
# Shopify's schema is never committed. Prints the folder holding admin_<version>.json.gz
# last. Does nothing when it is there already.
set -euo pipefail
VERSION=1.16.0
INTEGRITY="sha512-tqgRnK7sQhjew+htxtleTH23nXB5fZcsrhWgEkomsorGXvLOB2mh2upwZm8uzuTDNTZnqtLMe64yIwh6s2awtw=="
DEST="${STOCKYARD_SHOPIFY_SCHEMA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stockyard/shopify-dev-mcp-$VERSION}"
# The API version the connector pins (stockyard.connectors.shopify.documents.API_VERSION):
# the cache folder only ever appears whole (renamed into place below).
MARK="$DEST/dist/data/admin_2026-07.json.gz"
if [ -s "$MARK" ]; then
    echo "$DEST/dist/data"
    exit 0
fi
# shellcheck source=lib/npm-pack.sh
. "$(dirname "$0")/lib/npm-pack.sh"
ensure_npm
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
TARBALL="$(npm_pack_checked "@shopify/dev-mcp@$VERSION" "$INTEGRITY" "$WORK")"
tar -xzf "$TARBALL" -C "$WORK" --wildcards \
    'package/dist/data/admin_*.json.gz' package/dist/data/mcp-instructions/admin.md \
    package/LICENSE package/README.md package/package.json
# Into a sibling folder first, then renamed: a half-unpacked cache is never mistaken for one.
mkdir -p "$(dirname "$DEST")"
STAGE="$(mktemp -d "$(dirname "$DEST")/.shopify-dev-mcp-$VERSION.XXXXXX")"
cp -r "$WORK/package/." "$STAGE/"
chmod 755 "$STAGE"
rm -rf "$DEST"
mv "$STAGE" "$DEST"
echo "$DEST/dist/data"
