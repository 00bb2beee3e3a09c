#!/usr/bin/env bash
# The emulator against a floor it builds itself, in one run, on loopback only:
#   bash emulator/bench/run.sh
# Installs wrk (Debian) if missing, builds the release binaries once, then measures
# send throughput and latency (wrk, pinned), the signed-webhook pipeline, start-up,
# idle RSS and RSS after one million sends, and prints a Markdown table with ratios.
# Not part of the test suite. Every step is bounded in time. Knobs (environment):
#   BENCH_DURATION=10 BENCH_WARMUP=5 BENCH_SENDS=1000000 BENCH_PACED_RATE=1000
#   BENCH_HELD_SENDS=20000 (sends with no webhook URL set; 0 skips)
#   BENCH_SERVER_CPU=0 BENCH_LOAD_CPU=1 BENCH_OUT=target/bench BENCH_SKIP_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-5}
SENDS=${BENCH_SENDS:-1000000}
PACED_RATE=${BENCH_PACED_RATE:-1000}
HELD_SENDS=${BENCH_HELD_SENDS:-20000}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
OUT=${BENCH_OUT:-target/bench}
EMU=127.0.0.1:${BENCH_EMULATOR_PORT:-4104}
FLOOR=127.0.0.1:${BENCH_FLOOR_PORT:-4110}
SINK=127.0.0.1:${BENCH_SINK_PORT:-4111}
LUA=emulator/bench/messages.lua
mkdir -p "$OUT"

step() { printf '\n==> %s\n' "$*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

# ---- tools and binaries --------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    step "installing wrk (Debian)"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
fi
for t in wrk taskset curl awk; do command -v $t >/dev/null || die "$t is needed"; done

BIN=${CARGO_TARGET_DIR:-target}/release
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    step "building release binaries (wa-emulator, examples floor and sink)"
    cargo build --release -q -p wa-emulator-cli --bin wa-emulator
    cargo build --release -q -p wa-emulator --example floor --example sink
fi
EMU_BIN=$BIN/wa-emulator
FLOOR_BIN=$BIN/examples/floor
SINK_BIN=$BIN/examples/sink
for b in "$EMU_BIN" "$FLOOR_BIN" "$SINK_BIN"; do [ -x "$b" ] || die "$b is missing"; done

# ---- process helpers (only the processes started here are ever stopped) ----------------
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
stop() { # SIGTERM, then SIGKILL after 3 s: a server that hangs on shutdown must not hang the run
    kill "$1" 2>/dev/null || return 0
    for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.01; done
    if kill -0 "$1" 2>/dev/null; then
        echo "bench: pid $1 ignored SIGTERM for 3 s; killed" >&2
        kill -9 "$1" 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null || true
}
port_free() { ! curl -s -o /dev/null --max-time 0.5 "http://$1/" 2>/dev/null; }
wait_up() { # url: up to 10 s
    for _ in $(seq 1 1000); do curl -sf -o /dev/null --max-time 0.5 "$1" && return 0; sleep 0.01; done
    die "$1 did not come up"
}
rss_mib() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
get() { grep -m1 "^$1=" "$2" | cut -d= -f2-; }
to_ms() { # wrk latency like 263.00us / 1.23ms / 2.00s → ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.3f", n }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "—"; else printf "%.2f", a / b }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 <= b + 0) ? "met" : "**missed**" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0) ? "met" : "**missed**" }'; }

# wrk LABEL HOST CONNECTIONS SECONDS → $OUT/wrk-LABEL.txt; prints "req/s p50 p99"
wrk_run() {
    local f="$OUT/wrk-$1.txt"
    taskset -c "$LCPU" wrk -t1 -c"$3" -d"$4"s --latency -s "$LUA" "http://$2" >"$f" 2>&1 || die "wrk failed: $(cat "$f")"
    if grep -q "Non-2xx" "$f"; then die "$1: some answers were not 200 ($(grep Non-2xx "$f")); see $f"; fi
    local rps p50 p99
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$f")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$f")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$f")")
    echo "$rps $p50 $p99"
}

for a in "$EMU" "$FLOOR" "$SINK"; do port_free "$a" || die "$a is in use; set BENCH_*_PORT"; done

CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MACHINE="$(nproc) CPU ($CPU_MODEL), Linux $(uname -r), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM; $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'); $(rustc -V 2>/dev/null | awk '{ print $1, $2 }')"
step "machine: $MACHINE"

# ---- start-up ------------------------------------------------------------------------
step "start-up to healthy (20 starts each)"
taskset -c "$SCPU" "$SINK_BIN" startup --addr "$EMU" --path /__emulator/health --runs 20 \
    -- "$EMU_BIN" serve --addr "$EMU" >"$OUT/startup-emulator.txt"
taskset -c "$SCPU" "$SINK_BIN" startup --addr "$FLOOR" --path / --runs 20 \
    -- "$FLOOR_BIN" --addr "$FLOOR" >"$OUT/startup-floor.txt"
E_START=$(get startup_p50_ms "$OUT/startup-emulator.txt")
F_START=$(get startup_p50_ms "$OUT/startup-floor.txt")

# The floor answers with the emulator's own bytes for this request.
"$EMU_BIN" serve --addr "$EMU" >/dev/null 2>&1 & P=$!; PIDS+=("$P")
wait_up "http://$EMU/__emulator/health"
curl -s "http://$EMU/v21.0/106540352242922/messages" -H 'Authorization: Bearer wa-emulator-token' \
    -H 'Content-Type: application/json' -d "$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$LUA")" >"$OUT/answer.json"
stop "$P"
grep -q '"wamid\.' "$OUT/answer.json" || die "the emulator did not accept the benchmark send: $(cat "$OUT/answer.json")"

# ---- floor ---------------------------------------------------------------------------
step "floor: wrk c32 (after ${WARMUP}s warm-up) and c1"
taskset -c "$SCPU" "$FLOOR_BIN" --addr "$FLOOR" --body-file "$OUT/answer.json" >/dev/null & P=$!; PIDS+=("$P")
wait_up "http://$FLOOR/"; sleep 0.5
F_IDLE=$(rss_mib "$P" VmRSS)
wrk_run floor-warmup "$FLOOR" 32 "$WARMUP" >/dev/null
t0=$(cpu_ticks "$P")
read -r F_RPS F_P50 F_P99 <<<"$(wrk_run floor-c32 "$FLOOR" 32 "$DURATION")"
F_CPU_US=$(awk -v t="$(( $(cpu_ticks "$P") - t0 ))" -v n="$F_RPS" -v d="$DURATION" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / (n * d) }')
read -r F_RPS1 F_P50_1 F_P99_1 <<<"$(wrk_run floor-c1 "$FLOOR" 1 "$DURATION")"
stop "$P"

step "floor that also delivers two signed webhooks per request: wrk c32"
taskset -c "$LCPU" "$SINK_BIN" serve --listen "$SINK" >/dev/null & S=$!; PIDS+=("$S")
wait_up "http://$SINK/__sink/stats"
taskset -c "$SCPU" "$FLOOR_BIN" --addr "$FLOOR" --body-file "$OUT/answer.json" --webhooks "http://$SINK/webhook" >/dev/null & P=$!; PIDS+=("$P")
wait_up "http://$FLOOR/"
wrk_run floorhooks-warmup "$FLOOR" 32 "$WARMUP" >/dev/null
read -r FH_RPS FH_P50 FH_P99 <<<"$(wrk_run floorhooks-c32 "$FLOOR" 32 "$DURATION")"
sleep 1
curl -s "http://$SINK/__sink/stats" >"$OUT/floorhooks-sink.txt"
FH_RECEIVED=$(get received "$OUT/floorhooks-sink.txt"); FH_BAD=$(get bad_signature "$OUT/floorhooks-sink.txt")
stop "$P"; stop "$S"

# ---- emulator, webhooks to the sink ---------------------------------------------------
step "emulator: wrk c32 (after ${WARMUP}s warm-up) and c1, webhooks to the sink"
taskset -c "$LCPU" "$SINK_BIN" serve --listen "$SINK" --verify-token wa-emulator-verify >/dev/null & S=$!; PIDS+=("$S")
wait_up "http://$SINK/__sink/stats"
taskset -c "$SCPU" "$EMU_BIN" serve --addr "$EMU" --webhook-url "http://$SINK/webhook" >"$OUT/emulator.log" 2>&1 & P=$!; PIDS+=("$P")
wait_up "http://$EMU/__emulator/health"; sleep 0.5
E_IDLE=$(rss_mib "$P" VmRSS)
wrk_run emulator-warmup "$EMU" 32 "$WARMUP" >/dev/null
t0=$(cpu_ticks "$P")
read -r E_RPS E_P50 E_P99 <<<"$(wrk_run emulator-c32 "$EMU" 32 "$DURATION")"
E_CPU_US=$(awk -v t="$(( $(cpu_ticks "$P") - t0 ))" -v n="$E_RPS" -v d="$DURATION" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / (n * d) }')
read -r E_RPS1 E_P50_1 E_P99_1 <<<"$(wrk_run emulator-c1 "$EMU" 1 "$DURATION")"
step "emulator: waiting for every webhook of those runs to reach the sink"
taskset -c "$LCPU" "$SINK_BIN" drain --emulator "http://$EMU" --sink "http://$SINK" --timeout 120 >"$OUT/drain-wrk.txt"
W_MADE=$(get emulator_deliveries "$OUT/drain-wrk.txt"); W_LOST=$(get lost "$OUT/drain-wrk.txt")
W_BAD=$(get bad_signature "$OUT/drain-wrk.txt"); W_WAIT=$(get drain_wait_s "$OUT/drain-wrk.txt")
W_CONN=$(get connections "$OUT/drain-wrk.txt")
stop "$P"; stop "$S"

# ---- webhook pipeline ----------------------------------------------------------------
step "webhook pipeline: saturated (32 connections, ${DURATION}s), then paced at $PACED_RATE sends/s"
taskset -c "$SCPU" "$EMU_BIN" serve --addr "$EMU" >/dev/null 2>&1 & P=$!; PIDS+=("$P")
wait_up "http://$EMU/__emulator/health"
taskset -c "$LCPU" "$SINK_BIN" pipeline --emulator "http://$EMU" --connections 32 --duration "$DURATION" \
    --drain-timeout 120 >"$OUT/pipeline-saturated.txt"
taskset -c "$LCPU" "$SINK_BIN" pipeline --emulator "http://$EMU" --connections 8 --duration "$DURATION" \
    --rate "$PACED_RATE" --drain-timeout 60 >"$OUT/pipeline-paced.txt"
stop "$P"
PS=$OUT/pipeline-saturated.txt; PP=$OUT/pipeline-paced.txt
for f in "$PS" "$PP"; do
    [ "$(get sends_non_2xx "$f")" = 0 ] && [ "$(get send_errors "$f")" = 0 ] || die "pipeline sends failed: $(get first_error "$f") ($f)"
done

# ---- one million sends ---------------------------------------------------------------
step "memory: $SENDS sends (32 connections, default retention, webhooks to the sink)"
taskset -c "$LCPU" "$SINK_BIN" serve --listen "$SINK" >/dev/null & S=$!; PIDS+=("$S")
wait_up "http://$SINK/__sink/stats"
taskset -c "$SCPU" "$EMU_BIN" serve --addr "$EMU" --webhook-url "http://$SINK/webhook" >/dev/null 2>&1 & P=$!; PIDS+=("$P")
wait_up "http://$EMU/__emulator/health"
taskset -c "$LCPU" "$SINK_BIN" send --emulator "http://$EMU" --count "$SENDS" --connections 32 --timeout 600 >"$OUT/million.txt"
taskset -c "$LCPU" "$SINK_BIN" drain --emulator "http://$EMU" --sink "http://$SINK" --timeout 300 >"$OUT/drain-million.txt"
E_RSS_1M=$(rss_mib "$P" VmRSS); E_HWM_1M=$(rss_mib "$P" VmHWM)
curl -s "http://$EMU/__emulator/requests?since=999999999999" >"$OUT/requests-after-million.json"
M_OK=$(get sends_ok "$OUT/million.txt"); M_RPS=$(get sends_per_s "$OUT/million.txt")
M_LOST=$(get lost "$OUT/drain-million.txt"); M_MADE=$(get emulator_deliveries "$OUT/drain-million.txt")
M_EVICTED=$(get emulator_evicted "$OUT/drain-million.txt")
stop "$P"; stop "$S"
[ "$M_OK" = "$SENDS" ] || echo "bench: only $M_OK of $SENDS sends succeeded: $(get first_error "$OUT/million.txt")" >&2

# ---- no webhook URL: deliveries are held ------------------------------------------------
HELD="skipped"
if [ "$HELD_SENDS" -gt 0 ]; then
    step "held deliveries: $HELD_SENDS sends with no webhook URL, in 4 equal batches"
    taskset -c "$SCPU" "$EMU_BIN" serve --addr "$EMU" >/dev/null 2>&1 & P=$!; PIDS+=("$P")
    wait_up "http://$EMU/__emulator/health"
    rates=()
    for i in 1 2 3 4; do
        taskset -c "$LCPU" "$SINK_BIN" send --emulator "http://$EMU" --count $(( HELD_SENDS / 4 )) --connections 32 \
            --timeout 120 >"$OUT/held-$i.txt"
        rates+=("$(get sends_per_s "$OUT/held-$i.txt")")
    done
    HELD="sends/s per quarter ${rates[*]}; RSS $(rss_mib "$P" VmRSS) MiB; $(curl -s "http://$EMU/__emulator/webhooks?limit=0" | grep -o '"pending":[0-9]*') held"
    stop "$P"
fi

# ---- scenario suite ------------------------------------------------------------------
SUITE="not run: \`wa-emulator run\` does not exist in this build"
if "$EMU_BIN" --help 2>/dev/null | grep -qE '^ +run +'; then
    step "1,000-scenario suite through wa-emulator run"
    cargo run --release -q -p scenario --example gen_bench -- 1000 "$OUT/scenarios" >/dev/null
    s0=$(date +%s.%N)
    if timeout 600 "$EMU_BIN" run -q "$OUT/scenarios" >"$OUT/suite.txt" 2>&1; then
        SUITE=$(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f s for 1,000 scenarios", b - a }')
    else
        SUITE="failed (see $OUT/suite.txt)"
    fi
fi

# ---- table ---------------------------------------------------------------------------
THRU_RATIO=$(ratio "$E_RPS" "$F_RPS")
{
echo "Machine: $MACHINE."
echo "Server pinned to CPU $SCPU, load generator and sink to CPU $LCPU; wrk -t1, ${WARMUP} s warm-up, ${DURATION} s runs."
echo
echo "| measure | emulator | floor | emulator ÷ floor | target | |"
echo "|---|---:|---:|---:|---|---|"
echo "| send c32 req/s | $E_RPS | $F_RPS | $THRU_RATIO | ≥ 0.50 of floor | $(ge "$THRU_RATIO" 0.5) |"
echo "| send c32 req/s against a floor that also delivers 2 signed webhooks per request | $E_RPS | $FH_RPS | $(ratio "$E_RPS" "$FH_RPS") | | |"
echo "| send c32 p50 ms | $E_P50 | $F_P50 | $(ratio "$E_P50" "$F_P50") | | |"
echo "| send c32 p99 ms | $E_P99 | $F_P99 | $(ratio "$E_P99" "$F_P99") | ≤ 1 ms | $(le "$E_P99" 1) |"
echo "| send c1 req/s | $E_RPS1 | $F_RPS1 | $(ratio "$E_RPS1" "$F_RPS1") | | |"
echo "| send c1 p50 ms | $E_P50_1 | $F_P50_1 | $(ratio "$E_P50_1" "$F_P50_1") | ≤ 0.15 ms | $(le "$E_P50_1" 0.15) |"
echo "| server CPU µs per send (c32) | $E_CPU_US | $F_CPU_US | $(ratio "$E_CPU_US" "$F_CPU_US") | | |"
echo "| start-up to healthy ms (p50 of 20) | $E_START | $F_START | $(ratio "$E_START" "$F_START") | ≤ 20 ms | $(le "$E_START" 20) |"
echo "| idle RSS MiB | $E_IDLE | $F_IDLE | $(ratio "$E_IDLE" "$F_IDLE") | ≤ 10 MiB | $(le "$E_IDLE" 10) |"
echo "| RSS after $M_OK sends MiB (peak) | $E_RSS_1M ($E_HWM_1M) | | | ≤ 100 MiB | $(le "$E_RSS_1M" 100) |"
echo "| signed deliveries/s, saturated | $(get deliveries_per_s "$PS") | | | ≥ 20,000 | $(ge "$(get deliveries_per_s "$PS")" 20000) |"
echo "| request→delivery p50 / p99 ms, saturated | $(get delay_p50_ms "$PS") / $(get delay_p99_ms "$PS") | | | | |"
echo "| request→delivery p50 / p99 ms, $PACED_RATE sends/s | $(get delay_p50_ms "$PP") / $(get delay_p99_ms "$PP") | | | p99 ≤ 5 ms | $(le "$(get delay_p99_ms "$PP")" 5) |"
echo "| webhooks lost (made → received once, bad signatures) | wrk runs $W_MADE → $W_LOST lost, $W_BAD bad; pipeline $(get emulator_deliveries "$PS")+$(get emulator_deliveries "$PP") → $(( $(get lost "$PS") + $(get lost "$PP") )) lost, $(( $(get bad_signature "$PS") + $(get bad_signature "$PP") )) bad; 1M run $M_MADE → $M_LOST lost | | | 0 | $( [ "$W_LOST$W_BAD$(get lost "$PS")$(get lost "$PP")$M_LOST" = 00000 ] && echo met || echo '**missed**') |"
echo "| 1,000-scenario suite | $SUITE | | | | |"
echo "| $HELD_SENDS sends with no webhook URL (held deliveries) | $HELD | | | | |"
echo
echo "The webhook floor's sink received $FH_RECEIVED webhooks ($FH_BAD with a bad signature); its c32 p50 / p99 were $FH_P50 / $FH_P99 ms."
echo "Also: sends/s during the pipeline run $(get sends_per_s "$PS") (saturated), $(get sends_per_s "$PP") (paced);"
echo "the wrk runs' webhooks took $W_WAIT s more to drain after wrk stopped and used $W_CONN TCP connections to the sink"
echo "($(get connections "$PS") in the saturated pipeline run); the $M_OK-send run sent $M_RPS req/s and evicted $M_EVICTED finished deliveries from the log."
} | tee "$OUT/results.md"
echo >&2
echo "raw outputs: $OUT/" >&2
