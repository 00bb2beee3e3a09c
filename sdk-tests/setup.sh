#!/usr/bin/env bash
# Installs the pinned client SDKs that sdk-tests drive: pywa and aiortc (the media tests'
# WebRTC business) in a Python venv in <repo>/.local/venv, and @kapso/whatsapp-cloud-api
# (sdk-tests/node/node_modules).
# Idempotent: when the pinned versions are already there it only says so.
# Uses the machine's ordinary pip/npm configuration (no registry host here).
# A missing runtime (python3, node >= 20) is reported, not fatal: the tests then skip
# with the same reason (and fail under CI). A failing install is fatal.
set -euo pipefail

PYWA_VERSION="4.5.0"
AIORTC_VERSION="1.16.0"
KAPSO_VERSION="0.3.0"
NODE_MAJOR_MIN=20

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venv="$repo/.local/venv"

say() { printf 'sdk-tests setup: %s\n' "$*"; }

# --- Python: pywa -------------------------------------------------------------
py="${PYTHON:-python3}"
if ! command -v "$py" >/dev/null 2>&1; then
    say "WARNING: no $py on PATH: the pywa tests will skip (fail under CI)"
else
    if [ -x "$venv/bin/python" ] &&
        "$venv/bin/python" - "$PYWA_VERSION" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
assert version("pywa") == sys.argv[1]
import fastapi, uvicorn, httpx  # noqa: F401  (the webhook server and client pywa needs)
PYEOF
    then
        say "pywa $PYWA_VERSION already installed in .local/venv"
    else
        if [ ! -x "$venv/bin/python" ]; then
            say "creating venv .local/venv with $("$py" --version 2>&1)"
            mkdir -p "$repo/.local"
            if ! "$py" -m venv "$venv"; then
                rm -rf "$venv"
                say "cannot create a venv with $py (on Debian: apt-get install python3-venv)"
                exit 1
            fi
        fi
        say "installing pywa[fastapi]==$PYWA_VERSION, uvicorn, httpx into .local/venv (versions pinned by sdk-tests/python/constraints.txt)"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            -c "$here/python/constraints.txt" "pywa[fastapi]==$PYWA_VERSION" uvicorn httpx
        say "installed: $("$venv/bin/python" -c 'from importlib.metadata import version as v; print("pywa", v("pywa"), "fastapi", v("fastapi"), "uvicorn", v("uvicorn"), "httpx", v("httpx"))')"
    fi
    # --- aiortc: the business's WebRTC stack in the media tests (tests/media.rs) ----------
    if "$venv/bin/python" - "$AIORTC_VERSION" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
assert version("aiortc") == sys.argv[1]
import aiortc, av  # noqa: F401  (av: its opus codec)
PYEOF
    then
        say "aiortc $AIORTC_VERSION already installed in .local/venv"
    else
        say "installing aiortc==$AIORTC_VERSION into .local/venv (versions pinned by sdk-tests/python/constraints.txt)"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            -c "$here/python/constraints.txt" "aiortc==$AIORTC_VERSION"
        say "installed: $("$venv/bin/python" -c 'from importlib.metadata import version as v; print("aiortc", v("aiortc"), "av", v("av"), "aioice", v("aioice"))')"
    fi
fi

# --- Node: @kapso/whatsapp-cloud-api --------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "WARNING: no node/npm on PATH: the kapso tests will skip (fail under CI)"
else
    major="$(node -p 'process.versions.node.split(".")[0]')"
    if [ "$major" -lt "$NODE_MAJOR_MIN" ]; then
        say "WARNING: node $(node --version) is older than $NODE_MAJOR_MIN: the kapso tests will skip (fail under CI)"
    else
        installed="$(node -p "try{require('$here/node/node_modules/@kapso/whatsapp-cloud-api/package.json').version}catch(e){''}")"
        if [ "$installed" = "$KAPSO_VERSION" ]; then
            say "@kapso/whatsapp-cloud-api $KAPSO_VERSION already installed in sdk-tests/node"
        else
            say "installing @kapso/whatsapp-cloud-api@$KAPSO_VERSION with node $(node --version) (npm ci from package-lock.json)"
            (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error)
        fi
    fi
fi

