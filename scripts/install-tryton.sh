#!/usr/bin/env bash
# Tryton for the ERP-to-shop demo and tests: its own virtualenv under .cache/ (trytond pins
# libraries Stockyard does not need), built from PyPI once and reused while the pins hold.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/tryton/venv
stamp=$venv/.installed
if [[ -f $stamp ]] && cmp -s systems/tryton/requirements.txt "$stamp"; then
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q -r systems/tryton/requirements.txt
cp systems/tryton/requirements.txt "$stamp"
echo "tryton: $("$venv/bin/trytond" --version)"
