#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what the tests need
# (the sipp SIP peer and stunnel4, podman, runc and slirp4netns from Debian, the Python
# and Node client SDKs, aiortc and the OpenAPI validator into ignored local folders), builds the
# binary and the container image, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

step "system packages the build needs (libopus-dev, pkg-config: .ci/system-packages.sh)"
bash .ci/system-packages.sh

step "system packages for the tests (sipp; stunnel4 terminates TLS in front of it)"
if ! command -v sipp >/dev/null 2>&1 || ! command -v stunnel4 >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq sip-tester stunnel4 >/dev/null
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq sip-tester stunnel4 >/dev/null
    fi
fi
sipp -v 2>/dev/null | grep -m1 -i "sipp" || true
stunnel4 -version 2>&1 | grep -m1 "^stunnel" || true

step "podman, runc and slirp4netns for the container image test (container/)"
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 || ! command -v slirp4netns >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq podman runc slirp4netns >/dev/null
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq podman runc slirp4netns >/dev/null
    fi
fi
podman --version

if [ -f sdk-tests/setup.sh ]; then
    step "client SDKs for sdk-tests (pywa, aiortc, @kapso/whatsapp-cloud-api)"
    bash sdk-tests/setup.sh
fi

step "the OpenAPI validator for the admin API's description (openapi-spec-validator)"
bash emulator/openapi/setup.sh

step "headless Chromium and playwright-core for the inspector's browser test"
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null
    fi
fi
(cd emulator/ui/test && npm ci --no-audit --no-fund --silent)

step "build"
cargo build --workspace --bins --examples

step "container image: static release binary and FROM scratch image (container/build.sh)"
# Built here, once, because the static release build takes minutes; the image test runs
# container/build.sh again, which is then a no-op of seconds.
image_start=$SECONDS
container/build.sh
echo "container image built in $((SECONDS - image_start)) s"

step "tests"
# A test that cannot run for a missing tool fails under CI and is skipped elsewhere
# (test-skip/): each skip is written to target/skipped-tests.txt and listed at the end.
mkdir -p target
rm -f target/skipped-tests.txt
cargo test --workspace 2>&1 | tee target/cargo-test.log

step "scenario corpus through the binary: wa-emulator run (in-process emulators, JUnit XML in target/scenarios.xml)"
target/debug/wa-emulator run scenario/scenarios --junit target/scenarios.xml | tee target/scenarios.log

step "one running emulator: the corpus on a tenant per scenario (run --target), then app-under-test mode"
emu_log=$(mktemp)
target/debug/wa-emulator serve --addr 127.0.0.1:0 --clock virtual --seed 3 >"$emu_log" 2>&1 &
emu_pid=$!
app_pid=""
trap 'kill $emu_pid $app_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$emu_log" && break; sleep 0.05; done
emu_url=$(sed -n 's/^wa-emulator listening on //p' "$emu_log")
# Every story on a tenant of its own, in parallel, on this one emulator.
target/debug/wa-emulator run --target "$emu_url" scenario/scenarios | tee -a target/scenarios.log
# The example integration answers calls by itself; it knows the default tenant.
app_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/debug/examples/answering_app "127.0.0.1:$app_port" "$emu_url" &
app_pid=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$app_port") 2>/dev/null && break; sleep 0.05; done
target/debug/wa-emulator run --target "$emu_url" --app "http://127.0.0.1:$app_port/webhook" scenario/scenarios/app | tee -a target/scenarios.log

# One closing line for everything above: Rust tests plus scenarios.
awk '/^test result:/ { p += $4; f += $6 } /^ok: [0-9]+ passed|^FAILED: [0-9]+ passed/ { p += $2; f += $4 }
     END { printf "\nall: %d passed, %d failed\n", p, f }' target/cargo-test.log target/scenarios.log
# Skips are never silent: each test that could not run, and why.
if [ -s target/skipped-tests.txt ]; then
    cat target/skipped-tests.txt
fi
