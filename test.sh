#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what the tests need
# (the sipp SIP peer from Debian, the Python and Node client SDKs into ignored local
# folders), builds the binary, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

step "system packages for the tests (sipp)"
if ! command -v sipp >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq sip-tester >/dev/null
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq sip-tester >/dev/null
    fi
fi
sipp -v 2>/dev/null | grep -m1 -i "sipp" || true

if [ -f sdk-tests/setup.sh ]; then
    step "client SDKs for sdk-tests (pywa, @kapso/whatsapp-cloud-api)"
    bash sdk-tests/setup.sh
fi

step "build"
cargo build --workspace --bins

step "tests"
# sipp is installed above, so the SIP tests must run, not skip.
SIPP_REQUIRED=1 cargo test --workspace
