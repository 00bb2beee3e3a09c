#!/usr/bin/env bash
# Builds the container image: a statically linked release `wa-emulator` (the host's gnu
# target with `crt-static`, stripped) and a FROM scratch image holding only that binary,
# tagged wa-emulator:latest and wa-emulator:<crate version>.
#
#   container/build.sh                    # binary and image
#   container/build.sh --binary-only      # just the static binary
#
# Environment:
#   CONTAINER_ENGINE      podman (default) or docker
#   CONTAINER_TARGET_DIR  Cargo target directory of the static build [default:
#                         target/container]; a folder of its own, so the build neither
#                         waits for nor invalidates the usual debug and release builds
#   IMAGE                 the image name [default: wa-emulator]
#
# It prints, last, the path of the binary and then the image id (also written to
# <target dir>/image/image-id).
set -euo pipefail
cd "$(dirname "$0")/.."

binary_only=false
case "${1:-}" in
    "") ;;
    --binary-only) binary_only=true ;;
    *) echo "usage: container/build.sh [--binary-only]" >&2; exit 2 ;;
esac

engine="${CONTAINER_ENGINE:-podman}"
target_dir="${CONTAINER_TARGET_DIR:-target/container}"
image="${IMAGE:-wa-emulator}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
case "$triple" in
    *-linux-gnu) ;;
    *) echo "container/build.sh: a static glibc build needs a *-linux-gnu host, this is $triple" >&2; exit 2 ;;
esac

echo "==> static release binary ($triple, crt-static) in $target_dir" >&2
# RUSTFLAGS reach only the --target artifacts, not the build scripts and proc macros
# (which cannot be static). No debug info and stripped: the image is just this file.
# libopus (the media codec) is linked from the system's static library (libopus-dev).
OPUS_LIB_STATIC=true OPUS_LIB_DIR="$(pkg-config --variable=libdir opus)" \
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
CARGO_PROFILE_RELEASE_DEBUG=0 \
CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked --quiet \
        --target "$triple" --target-dir "$target_dir" \
        -p wa-emulator-cli --bin wa-emulator
binary="$target_dir/$triple/release/wa-emulator"

# Static, or the scratch image could not run it.
if command -v file >/dev/null 2>&1 && ! file -L "$binary" | grep -q "static"; then
    echo "container/build.sh: $binary is not statically linked:" >&2
    file -L "$binary" >&2
    exit 1
fi
version="$("$binary" --version | awk '{print $2}')"

if $binary_only; then
    echo "$binary"
    exit 0
fi

# The build context is a folder holding only the binary (not the repository, whose
# target/ is gigabytes).
context="$target_dir/image"
rm -rf "$context"
mkdir -p "$context"
cp "$binary" "$context/wa-emulator"

echo "==> image $image:latest and $image:$version ($engine)" >&2
"$engine" build --quiet \
    --file container/Containerfile \
    --tag "$image:latest" --tag "$image:$version" \
    --label "org.opencontainers.image.title=wa-emulator" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.description=A local emulator of the WhatsApp Business Cloud API calling surfaces" \
    --iidfile "$context/image-id" \
    "$context" >/dev/null
echo "$binary"
cat "$context/image-id"
echo
