#!/usr/bin/env bash
# Instructions per send, counted by callgrind: repeatable while the machine is busy, so
# it decides between two versions of the hot path where wall-clock runs cannot.
#   bash emulator/bench/callgrind.sh            # after run.sh (or a release build)
# Two runs of the emulator under `valgrind --tool=callgrind`, counting only the measured
# sends (collection switched on after a warm-up): with webhooks held (no callback URL) and
# with webhooks delivered to `sink serve`. Prints instructions per send for each and the
# top inclusive functions of the emulator's own code.
# Knobs: BENCH_CG_SENDS=2000 BENCH_CG_WARMUP=500 BENCH_OUT=target/bench
set -euo pipefail
cd "$(dirname "$0")/../.."

SENDS=${BENCH_CG_SENDS:-2000}
WARM=${BENCH_CG_WARMUP:-500}
OUT=${BENCH_OUT:-target/bench}
EMU=127.0.0.1:${BENCH_EMULATOR_PORT:-4104}
SINK=127.0.0.1:${BENCH_SINK_PORT:-4111}
BIN=${CARGO_TARGET_DIR:-target}/release
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "callgrind: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
for b in "$BIN/wa-emulator" "$BIN/examples/sink"; do
    [ -x "$b" ] || { echo "callgrind: $b is missing: run emulator/bench/run.sh first" >&2; exit 1; }
done

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done' EXIT
wait_up() { for _ in $(seq 1 3000); do curl -sf -o /dev/null --max-time 0.5 "$1" && return 0; sleep 0.01; done; echo "callgrind: $1 did not come up" >&2; exit 1; }

# one LABEL [serve flags…]: prints "LABEL instructions_per_send"
one() {
    local label=$1; shift
    local f="$OUT/callgrind-$label.out"
    rm -f "$f"*
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$f" \
        "$BIN/wa-emulator" serve --addr "$EMU" "$@" >/dev/null 2>"$OUT/callgrind-$label.log" &
    local p=$!; PIDS+=("$p")
    wait_up "http://$EMU/__emulator/health"
    "$BIN/examples/sink" send --emulator "http://$EMU" --count "$WARM" --connections 8 --timeout 300 >/dev/null
    sleep 1
    callgrind_control -i on "$p" >/dev/null
    "$BIN/examples/sink" send --emulator "http://$EMU" --count "$SENDS" --connections 8 --timeout 300 >"$OUT/callgrind-$label-send.txt"
    # Let the deliveries of those sends finish inside the measured window.
    sleep 2
    callgrind_control -i off "$p" >/dev/null
    kill "$p"; wait "$p" 2>/dev/null || true
    local ir
    ir=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n { gsub(",", "", $1); print $1; n = 1 }')
    # Valgrind's CPU has no SHA extensions, so SHA-256 runs in software here: shown apart.
    local sha
    sha=$(callgrind_annotate --auto=no --threshold=100 "$f" 2>/dev/null | awk '/:sha2::sha256::compress256/ { gsub(",", "", $1); s += $1 } END { print s + 0 }')
    printf '%s instructions_per_send=%d without_sha256=%d\n' "$label" "$(( ir / SENDS ))" "$(( (ir - sha) / SENDS ))"
    callgrind_annotate --inclusive=yes "$f" 2>/dev/null | grep -E 'wa_emulator::|serde_json|hyper::|malloc|free' \
        | awk -v n="${BENCH_CG_TOP:-60}" 'NR <= n' | cut -c1-170 >"$OUT/callgrind-$label-top.txt"
}

one held
"$BIN/examples/sink" serve --listen "$SINK" >/dev/null & PIDS+=("$!")
wait_up "http://$SINK/__sink/stats"
one delivered --webhook-url "http://$SINK/webhook"
echo "top inclusive functions: $OUT/callgrind-{held,delivered}-top.txt; raw: $OUT/callgrind-*.out" >&2
