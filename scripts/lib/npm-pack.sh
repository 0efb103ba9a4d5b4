# Sourced by the install scripts that take a file from the npm registry (axe-core,
# Shopify's schema, Magento's OpenAPI document): npm itself, and a pinned package's
# tarball checked against the registry's sha512 integrity before anything in it is used.

# npm from Debian's packages when the machine has none.
ensure_npm() {
    command -v npm >/dev/null && return 0
    local sudo=""
    if [ "$(id -u)" != "0" ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
}

# npm_pack_checked SPEC INTEGRITY FOLDER: packs SPEC (name@version) into FOLDER, checks
# it and prints the tarball's path; exits when the integrity differs.
npm_pack_checked() {
    local spec="$1" integrity="$2" folder="$3" tarball actual
    tarball="$folder/$(cd "$folder" && npm pack --silent "$spec" | tail -n 1)"
    actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
    if [ "$actual" != "$integrity" ]; then
        echo "$spec: integrity $actual, expected $integrity" >&2
        exit 1
    fi
    echo "$tarball"
}
