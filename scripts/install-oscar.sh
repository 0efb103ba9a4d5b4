#!/usr/bin/env bash
# django-oscar with django-oscar-api, the B2B trade store of the tests: its own virtualenv
# under .cache/ (Oscar pins Django and libraries Stockyard does not need), built from PyPI
# once and reused while the pins hold.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/oscar/venv
stamp=$venv/.installed
if [[ -f $stamp ]] && cmp -s systems/oscar/requirements.txt "$stamp"; then
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q -r systems/oscar/requirements.txt
cp systems/oscar/requirements.txt "$stamp"
echo "oscar: $("$venv/bin/python" -c 'import oscar, oscarapi; print(oscar.get_version(), "api", oscarapi.version)')"
