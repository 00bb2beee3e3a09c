#!/usr/bin/env bash
# Where the emulator's CPU goes under the send benchmark (wrk c32, webhooks to the sink):
#   bash emulator/bench/profile.sh          # after run.sh has built the binaries
# Samples the pinned emulator with `perf record -e cpu-clock` (a software clock, so it
# works in VMs without hardware counters) with DWARF call graphs, then prints the
# inclusive tree of the emulator's own functions (perf_tree.py) and the flat self-time
# top. Falls back to `valgrind --tool=callgrind` on a short run when perf cannot sample.
# Knobs: BENCH_PROFILE_SECS=5 BENCH_SERVER_CPU=0 BENCH_LOAD_CPU=1 BENCH_OUT=target/bench
#        BENCH_PROFILER=callgrind forces the callgrind path.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS=${BENCH_PROFILE_SECS:-5}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
OUT=${BENCH_OUT:-target/bench}
EMU=127.0.0.1:${BENCH_EMULATOR_PORT:-4104}
SINK=127.0.0.1:${BENCH_SINK_PORT:-4111}
BIN=${CARGO_TARGET_DIR:-target}/release
LUA=emulator/bench/messages.lua
mkdir -p "$OUT"
for b in "$BIN/wa-emulator" "$BIN/examples/sink"; do
    [ -x "$b" ] || { echo "profile: $b is missing: run emulator/bench/run.sh first" >&2; exit 1; }
done

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done' EXIT
wait_up() { for _ in $(seq 1 1000); do curl -sf -o /dev/null --max-time 0.5 "$1" && return 0; sleep 0.01; done; exit 1; }

taskset -c "$LCPU" "$BIN/examples/sink" serve --listen "$SINK" >/dev/null & PIDS+=("$!")
wait_up "http://$SINK/__sink/stats"
taskset -c "$SCPU" "$BIN/wa-emulator" serve --addr "$EMU" --webhook-url "http://$SINK/webhook" >/dev/null 2>&1 &
P=$!; PIDS+=("$P")
wait_up "http://$EMU/__emulator/health"
taskset -c "$LCPU" wrk -t1 -c32 -d3s -s "$LUA" "http://$EMU" >/dev/null

if [ "${BENCH_PROFILER:-perf}" = perf ] && perf record -e cpu-clock -o /dev/null -- true >/dev/null 2>&1; then
    taskset -c "$LCPU" wrk -t1 -c32 -d$((SECS + 3))s -s "$LUA" "http://$EMU" >"$OUT/profile-wrk.txt" &
    W=$!
    sleep 1
    perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$P" -o "$OUT/perf.data" -- sleep "$SECS" 2>/dev/null
    wait "$W"
    perf script -i "$OUT/perf.data" -F tid,ip,sym 2>/dev/null >"$OUT/perf-script.txt"
    python3 emulator/bench/perf_tree.py --depth 7 --min 0.7 <"$OUT/perf-script.txt" >"$OUT/profile-tree.txt"
    perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio -g none --percent-limit 0.7 2>/dev/null \
        | grep -v '^#' | grep -v "^$" | cut -c1-110 >"$OUT/profile-flat.txt"
    cat "$OUT/profile-tree.txt"
    echo
    echo "flat self time (top):"
    head -25 "$OUT/profile-flat.txt"
    echo
    grep Requests/sec "$OUT/profile-wrk.txt"
else
    echo "perf cannot sample here; callgrind on 2,000 sends (slow)" >&2
    kill -9 "$P"; wait "$P" 2>/dev/null || true
    rm -f "$OUT"/callgrind.out*
    valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
        "$BIN/wa-emulator" serve --addr "$EMU" --webhook-url "http://$SINK/webhook" >/dev/null 2>&1 &
    P=$!; PIDS+=("$P")
    wait_up "http://$EMU/__emulator/health"
    "$BIN/examples/sink" send --emulator "http://$EMU" --count 2000 --connections 8 --timeout 300 >/dev/null
    timeout 60 callgrind_control --dump "$P" >/dev/null 2>&1 || true
    sleep 1
    dump=$(ls -t "$OUT"/callgrind.out* | head -1)
    callgrind_annotate --inclusive=yes "$dump" 2>/dev/null | grep -E 'wa_emulator|serde_json|hyper_util|hashbrown' | cut -c1-160 | head -40
fi
echo "raw data: $OUT/"
