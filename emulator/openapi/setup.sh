#!/usr/bin/env bash
# Installs the OpenAPI validator that checks emulator/openapi/admin.json (the admin API's
# description): openapi-spec-validator, pinned, in a Python venv at <repo>/.local/openapi-venv
# (ignored by git). Idempotent: when the pinned version is there it only says so.
# Uses the machine's ordinary pip configuration (no registry host here).
# A missing python3 is reported, not fatal: the test then skips saying so (and fails
# under CI). A failing install is fatal.
set -euo pipefail

VALIDATOR_VERSION="0.9.0"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.local/openapi-venv"

say() { printf 'openapi setup: %s\n' "$*"; }

py="${PYTHON:-python3}"
if ! command -v "$py" >/dev/null 2>&1; then
    say "WARNING: no $py on PATH: the admin OpenAPI validation will skip (fail under CI)"
    exit 0
fi
if [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" - "$VALIDATOR_VERSION" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
assert version("openapi-spec-validator") == sys.argv[1]
PYEOF
then
    say "openapi-spec-validator $VALIDATOR_VERSION already installed in .local/openapi-venv"
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    say "creating venv .local/openapi-venv with $("$py" --version 2>&1)"
    mkdir -p "$repo/.local"
    if ! "$py" -m venv "$venv"; then
        rm -rf "$venv"
        say "cannot create a venv with $py (on Debian: apt-get install python3-venv)"
        exit 1
    fi
fi
say "installing openapi-spec-validator==$VALIDATOR_VERSION into .local/openapi-venv (versions pinned by emulator/openapi/constraints.txt)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$here/constraints.txt" "openapi-spec-validator==$VALIDATOR_VERSION"
say "installed: $("$venv/bin/openapi-spec-validator" --version 2>&1)"
