#!/usr/bin/env bash
# What the build itself needs from the system, before the first cargo command: libopus
# (the media endpoint's Opus codec, linked by opusic-c), pkg-config (container/build.sh
# finds the static libopus with it), and a C compiler with make (jemalloc, the binary's
# allocator, is built from source by tikv-jemalloc-sys). Installs from Debian only what
# is missing.
set -euo pipefail
missing=()
dpkg-query -W -f='${Status}' libopus-dev 2>/dev/null | grep -q "ok installed" || missing+=(libopus-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (what the build needs: the Opus codec, jemalloc)"
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
fi
