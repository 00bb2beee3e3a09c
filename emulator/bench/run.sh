#!/usr/bin/env bash
# The emulator against floors it builds itself and against its peers, in one run, on
# loopback only:
#   bash emulator/bench/run.sh
# Installs wrk (Debian) if missing, a Java runtime (Debian) if missing, and the peers
# (npm: wiremock 3.13.2, which ships the standalone jar, and mockttp 4.6.5) into the
# ignored emulator/bench/.peers/; builds the release binaries once; then measures send
# throughput and latency (wrk, pinned) of the floors, the emulator with webhooks held and
# with webhooks delivered, and the peers answering the same request with the emulator's
# own bytes; the signed-webhook pipeline; start-up; idle RSS and RSS after a million
# sends, to one recipient and to a million distinct ones; a 10,000-scenario suite. It
# prints a Markdown table with ratios from this one run and every target met or missed.
# Not part of the test suite. Every step is bounded in time. Knobs (environment):
#   BENCH_DURATION=10 BENCH_WARMUP=5 BENCH_PEER_WARMUP=30 BENCH_SENDS=1000000
#   BENCH_DISTINCT_SENDS=1000000 BENCH_SCENARIOS=10000 BENCH_PACED_RATE=1000
#   BENCH_PEERS=1 (0 skips the peers) BENCH_SERVER_CPU=0 BENCH_LOAD_CPU=1
#   BENCH_OUT=target/bench BENCH_SKIP_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-5}
PEER_WARMUP=${BENCH_PEER_WARMUP:-30}
SENDS=${BENCH_SENDS:-1000000}
DISTINCT=${BENCH_DISTINCT_SENDS:-1000000}
SCENARIOS=${BENCH_SCENARIOS:-10000}
PACED_RATE=${BENCH_PACED_RATE:-1000}
PEERS=${BENCH_PEERS:-1}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
OUT=${BENCH_OUT:-target/bench}
EMU=127.0.0.1:${BENCH_EMULATOR_PORT:-4104}
FLOOR=127.0.0.1:${BENCH_FLOOR_PORT:-4110}
SINK=127.0.0.1:${BENCH_SINK_PORT:-4111}
PEER=127.0.0.1:${BENCH_PEER_PORT:-4112}
LUA=emulator/bench/messages.lua
PEER_DIR=emulator/bench/.peers
WIREMOCK_VERSION=3.13.2
MOCKTTP_VERSION=4.6.5
mkdir -p "$OUT"

step() { printf '\n==> %s\n' "$*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo

# ---- tools and binaries --------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    step "installing wrk (Debian)"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
fi
for t in wrk taskset curl awk; do command -v $t >/dev/null || die "$t is needed"; done

if [ "$PEERS" = 1 ]; then
    if ! command -v java >/dev/null 2>&1; then
        step "installing a Java runtime for WireMock (Debian default-jre-headless)"
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq default-jre-headless >/dev/null
    fi
    command -v npm >/dev/null || die "npm is needed for the peers (or BENCH_PEERS=0)"
    if [ ! -f "$PEER_DIR/node_modules/wiremock/package.json" ] || [ ! -f "$PEER_DIR/node_modules/mockttp/package.json" ] \
        || ! grep -q "\"version\": \"$WIREMOCK_VERSION\"" "$PEER_DIR/node_modules/wiremock/package.json" \
        || ! grep -q "\"version\": \"$MOCKTTP_VERSION\"" "$PEER_DIR/node_modules/mockttp/package.json"; then
        step "installing the peers into $PEER_DIR (npm: wiremock@$WIREMOCK_VERSION, mockttp@$MOCKTTP_VERSION)"
        mkdir -p "$PEER_DIR"
        [ -f "$PEER_DIR/package.json" ] || echo '{"private": true}' >"$PEER_DIR/package.json"
        (cd "$PEER_DIR" && npm install --no-audit --no-fund --silent \
            "wiremock@$WIREMOCK_VERSION" "mockttp@$MOCKTTP_VERSION" >/dev/null)
    fi
    WIREMOCK_JAR=$(find "$PEER_DIR/node_modules/wiremock" -name "wiremock-standalone-$WIREMOCK_VERSION.jar" | head -1)
    [ -n "$WIREMOCK_JAR" ] || die "the wiremock package has no standalone jar"
fi

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
wait_up() { # url [seconds, default 10]
    local n=$(( ${2:-10} * 100 ))
    for _ in $(seq 1 "$n"); do curl -sf -o /dev/null --max-time 0.5 "$1" && return 0; sleep 0.01; done
    die "$1 did not come up"
}
rss_mib() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
get() { grep -m1 "^$1=" "$2" | cut -d= -f2-; }
to_ms() { # wrk latency like 263.00us / 1.23ms / 2.00s → ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.3f", n }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "—"; else printf "%.2f", a / b }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "" && a + 0 <= b + 0) ? "met" : "**missed**" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "" && a + 0 >= b + 0) ? "met" : "**missed**" }'; }
x() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a * b }'; }
us_per_req() { # ticks requests → µs of CPU per request
    awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n + 0 == 0) print "—"; else printf "%.1f", t / hz * 1e6 / n }'
}

# wrk LABEL HOST CONNECTIONS SECONDS → $OUT/wrk-LABEL.txt; prints "req/s p50 p99 requests"
wrk_run() {
    local f="$OUT/wrk-$1.txt"
    taskset -c "$LCPU" wrk -t1 -c"$3" -d"$4"s --latency -s "$LUA" "http://$2" >"$f" 2>&1 || die "wrk failed: $(cat "$f")"
    if grep -q "Non-2xx" "$f"; then die "$1: some answers were not 200 ($(grep Non-2xx "$f")); see $f"; fi
    local rps p50 p99 n
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$f")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$f")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$f")")
    n=$(awk '/requests in/ { print $1 }' "$f")
    echo "$rps $p50 $p99 $n"
}

# measure LABEL HOST PID WARMUP_S → c32 and c1 runs after a warm-up; prints
# "c32_rps c32_p50 c32_p99 cpu_us_per_req c1_rps c1_p50 c1_p99 rss_mib"
measure() {
    local label=$1 host=$2 pid=$3 warm=$4 rps p50 p99 n t0 t1 rps1 p50_1 p99_1 n1
    wrk_run "$label-warmup" "$host" 32 "$warm" >/dev/null
    t0=$(cpu_ticks "$pid")
    read -r rps p50 p99 n <<<"$(wrk_run "$label-c32" "$host" 32 "$DURATION")"
    t1=$(cpu_ticks "$pid")
    read -r rps1 p50_1 p99_1 n1 <<<"$(wrk_run "$label-c1" "$host" 1 "$DURATION")"
    echo "$rps $p50 $p99 $(us_per_req $(( t1 - t0 )) "$n") $rps1 $p50_1 $p99_1 $(rss_mib "$pid" VmRSS)"
}

for a in "$EMU" "$FLOOR" "$SINK" "$PEER"; do port_free "$a" || die "$a is in use; set BENCH_*_PORT"; done

CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MACHINE="$(nproc) CPU ($CPU_MODEL), Linux $(uname -r), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM; $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'); $(rustc -V 2>/dev/null | awk '{ print $1, $2 }')"
step "machine: $MACHINE"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- start-up ------------------------------------------------------------------------
step "start-up to healthy (20 starts each)"
taskset -c "$SCPU" "$SINK_BIN" startup --addr "$EMU" --path /__emulator/health --runs 20 \
    -- "$EMU_BIN" serve --addr "$EMU" >"$OUT/startup-emulator.txt"
taskset -c "$SCPU" "$SINK_BIN" startup --addr "$FLOOR" --path / --runs 20 \
    -- "$FLOOR_BIN" --addr "$FLOOR" >"$OUT/startup-floor.txt"
E_START=$(get startup_p50_ms "$OUT/startup-emulator.txt")
F_START=$(get startup_p50_ms "$OUT/startup-floor.txt")

# The floors and the peers answer with the emulator's own bytes for this request.
"$EMU_BIN" serve --addr "$EMU" >/dev/null 2>&1 & P=$!; PIDS+=("$P")
wait_up "http://$EMU/__emulator/health"
curl -s "http://$EMU/v21.0/106540352242922/messages" -H 'Authorization: Bearer wa-emulator-token' \
    -H 'Content-Type: application/json' -d "$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$LUA")" >"$OUT/answer.json"
stop "$P"
grep -q '"wamid\.' "$OUT/answer.json" || die "the emulator did not accept the benchmark send: $(cat "$OUT/answer.json")"

# ---- floors --------------------------------------------------------------------------
step "floor: wrk c32 (after ${WARMUP}s warm-up) and c1"
taskset -c "$SCPU" "$FLOOR_BIN" --addr "$FLOOR" --body-file "$OUT/answer.json" >/dev/null & P=$!; PIDS+=("$P")
wait_up "http://$FLOOR/"; sleep 0.5
F_IDLE=$(rss_mib "$P" VmRSS)
read -r F_RPS F_P50 F_P99 F_CPU F_RPS1 F_P50_1 F_P99_1 F_RSS <<<"$(measure floor "$FLOOR" "$P" "$WARMUP")"
stop "$P"

step "floor that also delivers two signed webhooks per request: wrk c32 and c1"
taskset -c "$LCPU" "$SINK_BIN" serve --listen "$SINK" >/dev/null & S=$!; PIDS+=("$S")
wait_up "http://$SINK/__sink/stats"
taskset -c "$SCPU" "$FLOOR_BIN" --addr "$FLOOR" --body-file "$OUT/answer.json" --webhooks "http://$SINK/webhook" >/dev/null & P=$!; PIDS+=("$P")
wait_up "http://$FLOOR/"
read -r FH_RPS FH_P50 FH_P99 FH_CPU FH_RPS1 FH_P50_1 FH_P99_1 FH_RSS <<<"$(measure floorhooks "$FLOOR" "$P" "$WARMUP")"
sleep 1
curl -s "http://$SINK/__sink/stats" >"$OUT/floorhooks-sink.txt"
FH_RECEIVED=$(get received "$OUT/floorhooks-sink.txt"); FH_BAD=$(get bad_signature "$OUT/floorhooks-sink.txt")
stop "$P"; stop "$S"

# ---- emulator, webhooks held ------------------------------------------------------------
step "emulator, no callback URL (webhooks held): wrk c32 (after ${WARMUP}s warm-up) and c1"
taskset -c "$SCPU" "$EMU_BIN" serve --addr "$EMU" >"$OUT/emulator-held.log" 2>&1 & P=$!; PIDS+=("$P")
wait_up "http://$EMU/__emulator/health"; sleep 0.5
E_IDLE=$(rss_mib "$P" VmRSS)
read -r H_RPS H_P50 H_P99 H_CPU H_RPS1 H_P50_1 H_P99_1 H_RSS <<<"$(measure emulator-held "$EMU" "$P" "$WARMUP")"
H_PENDING=$(curl -s "http://$EMU/__emulator/webhooks?limit=0" | grep -o '"pending":[0-9]*' | cut -d: -f2)
stop "$P"

# ---- emulator, webhooks to the sink ---------------------------------------------------
step "emulator, webhooks to the sink: wrk c32 (after ${WARMUP}s warm-up) and c1"
taskset -c "$LCPU" "$SINK_BIN" serve --listen "$SINK" --verify-token wa-emulator-verify >/dev/null & S=$!; PIDS+=("$S")
wait_up "http://$SINK/__sink/stats"
taskset -c "$SCPU" "$EMU_BIN" serve --addr "$EMU" --webhook-url "http://$SINK/webhook" >"$OUT/emulator.log" 2>&1 & P=$!; PIDS+=("$P")
wait_up "http://$EMU/__emulator/health"; sleep 0.5
read -r E_RPS E_P50 E_P99 E_CPU E_RPS1 E_P50_1 E_P99_1 E_RSS <<<"$(measure emulator-hooks "$EMU" "$P" "$WARMUP")"
step "emulator: waiting for every webhook of those runs to reach the sink"
taskset -c "$LCPU" "$SINK_BIN" drain --emulator "http://$EMU" --sink "http://$SINK" --timeout 120 >"$OUT/drain-wrk.txt"
W_MADE=$(get emulator_deliveries "$OUT/drain-wrk.txt"); W_LOST=$(get lost "$OUT/drain-wrk.txt")
W_BAD=$(get bad_signature "$OUT/drain-wrk.txt"); W_WAIT=$(get drain_wait_s "$OUT/drain-wrk.txt")
W_CONN=$(get connections "$OUT/drain-wrk.txt")
stop "$P"; stop "$S"

# ---- peers ---------------------------------------------------------------------------
WM="" MT=""
if [ "$PEERS" = 1 ]; then
    step "WireMock $WIREMOCK_VERSION, tuned (--no-request-journal --disable-request-logging), ${PEER_WARMUP}s warm-up"
    taskset -c "$SCPU" java -jar "$WIREMOCK_JAR" --bind-address 127.0.0.1 --port "${PEER##*:}" \
        --no-request-journal --disable-request-logging >"$OUT/wiremock.log" 2>&1 & P=$!; PIDS+=("$P")
    wait_up "http://$PEER/__admin/mappings" 60
    esc=$(sed 's/\\/\\\\/g; s/"/\\"/g' "$OUT/answer.json")
    curl -sf -o /dev/null -X POST "http://$PEER/__admin/mappings" -H 'Content-Type: application/json' \
        -d "{\"request\":{\"method\":\"POST\",\"url\":\"/v21.0/106540352242922/messages\"},\"response\":{\"status\":200,\"body\":\"$esc\",\"headers\":{\"Content-Type\":\"application/json\"}}}" \
        || die "WireMock refused the stub"
    WM=$(measure wiremock "$PEER" "$P" "$PEER_WARMUP")
    stop "$P"

    step "mockttp $MOCKTTP_VERSION (recordTraffic: false), ${WARMUP}s warm-up"
    NODE_PATH="$PEER_DIR/node_modules" taskset -c "$SCPU" node emulator/bench/mockttp-stub.js "${PEER##*:}" "$OUT/answer.json" \
        >"$OUT/mockttp.log" 2>&1 & P=$!; PIDS+=("$P")
    wait_up "http://$PEER/" 60
    MT=$(measure mockttp "$PEER" "$P" "$WARMUP")
    stop "$P"
fi
read -r WM_RPS WM_P50 WM_P99 WM_CPU WM_RPS1 WM_P50_1 WM_P99_1 WM_RSS <<<"${WM:-0 — — — — — — —}"
read -r MT_RPS MT_P50 MT_P99 MT_CPU MT_RPS1 MT_P50_1 MT_P99_1 MT_RSS <<<"${MT:-0 — — — — — — —}"
BEST_PEER=$(awk -v a="$WM_RPS" -v b="$MT_RPS" 'BEGIN { print (a + 0 > b + 0) ? a + 0 : b + 0 }')
BEST_NAME=$( [ "$BEST_PEER" = "${WM_RPS:-0}" ] && echo WireMock || echo mockttp )

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
step "memory: $SENDS sends to one recipient (32 connections, default retention, webhooks to the sink)"
taskset -c "$LCPU" "$SINK_BIN" serve --listen "$SINK" >/dev/null & S=$!; PIDS+=("$S")
wait_up "http://$SINK/__sink/stats"
taskset -c "$SCPU" "$EMU_BIN" serve --addr "$EMU" --webhook-url "http://$SINK/webhook" >/dev/null 2>&1 & P=$!; PIDS+=("$P")
wait_up "http://$EMU/__emulator/health"
taskset -c "$LCPU" "$SINK_BIN" send --emulator "http://$EMU" --count "$SENDS" --connections 32 --timeout 900 >"$OUT/million.txt"
taskset -c "$LCPU" "$SINK_BIN" drain --emulator "http://$EMU" --sink "http://$SINK" --timeout 300 >"$OUT/drain-million.txt"
E_RSS_1M=$(rss_mib "$P" VmRSS); E_HWM_1M=$(rss_mib "$P" VmHWM)
M_OK=$(get sends_ok "$OUT/million.txt"); M_RPS=$(get sends_per_s "$OUT/million.txt")
M_LOST=$(get lost "$OUT/drain-million.txt"); M_MADE=$(get emulator_deliveries "$OUT/drain-million.txt")
M_EVICTED=$(get emulator_evicted "$OUT/drain-million.txt")
stop "$P"; stop "$S"
[ "$M_OK" = "$SENDS" ] || echo "bench: only $M_OK of $SENDS sends succeeded: $(get first_error "$OUT/million.txt")" >&2

step "memory: $DISTINCT sends to $DISTINCT distinct recipients (32 connections, webhooks held)"
taskset -c "$SCPU" "$EMU_BIN" serve --addr "$EMU" >/dev/null 2>&1 & P=$!; PIDS+=("$P")
wait_up "http://$EMU/__emulator/health"
taskset -c "$LCPU" "$SINK_BIN" send --emulator "http://$EMU" --count "$DISTINCT" --connections 32 \
    --recipients distinct --timeout 900 >"$OUT/distinct.txt"
D_RSS=$(rss_mib "$P" VmRSS); D_HWM=$(rss_mib "$P" VmHWM)
stop "$P"
D_OK=$(get sends_ok "$OUT/distinct.txt"); D_RPS=$(get sends_per_s "$OUT/distinct.txt")
D_Q=$(get quarter_sends_per_s "$OUT/distinct.txt")
D_Q1=$(echo "$D_Q" | awk '{ print $1 }'); D_Q4=$(echo "$D_Q" | awk '{ print $4 }')
D_QR=$(ratio "${D_Q4:-0}" "${D_Q1:-0}")
[ "$D_OK" = "$DISTINCT" ] || echo "bench: only $D_OK of $DISTINCT distinct sends succeeded: $(get first_error "$OUT/distinct.txt")" >&2

# ---- scenario suite ------------------------------------------------------------------
SUITE_S=""
SUITE="not run: \`wa-emulator run\` does not exist in this build"
if "$EMU_BIN" --help 2>/dev/null | grep -qE '^ +run +'; then
    step "$SCENARIOS-scenario suite through wa-emulator run"
    rm -rf "$OUT/scenarios"
    cargo run --release -q -p scenario --example gen_bench -- "$SCENARIOS" "$OUT/scenarios" >/dev/null
    s0=$(date +%s.%N)
    if timeout 600 "$EMU_BIN" run -q "$OUT/scenarios" >"$OUT/suite.txt" 2>&1; then
        SUITE_S=$(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
        SUITE="$SUITE_S s"
    else
        SUITE="failed (see $OUT/suite.txt)"
    fi
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- tables --------------------------------------------------------------------------
row() { # name rps p50 p99 cpu rps1 p50_1 rss
    echo "| $1 | $2 | $(ratio "$2" "$F_RPS") | $3 | $4 | $5 | $6 | $7 | $8 |"
}
{
echo "Machine: $MACHINE."
echo "Server pinned to CPU $SCPU, wrk (-t1) and the sink to CPU $LCPU; ${WARMUP} s warm-up (WireMock ${PEER_WARMUP} s), ${DURATION} s runs."
echo "Load average (1, 5, 15 min) $LOAD_BEFORE before the run, $LOAD_AFTER after it."
echo
echo "Every server answers the same \`voice_call\` POST; the floors and the peers with the emulator's own answer bytes."
echo
echo "| server | c32 req/s | ÷ floor | c32 p50 ms | c32 p99 ms | CPU µs/req (c32) | c1 req/s | c1 p50 ms | RSS MiB after |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
row "hyper floor (static answer)" "$F_RPS" "$F_P50" "$F_P99" "$F_CPU" "$F_RPS1" "$F_P50_1" "$F_RSS"
row "webhook floor (static answer + 2 signed webhooks)" "$FH_RPS" "$FH_P50" "$FH_P99" "$FH_CPU" "$FH_RPS1" "$FH_P50_1" "$FH_RSS"
row "**wa-emulator, webhooks held**" "$H_RPS" "$H_P50" "$H_P99" "$H_CPU" "$H_RPS1" "$H_P50_1" "$H_RSS"
row "**wa-emulator, 2 signed webhooks per send to the sink**" "$E_RPS" "$E_P50" "$E_P99" "$E_CPU" "$E_RPS1" "$E_P50_1" "$E_RSS"
row "WireMock $WIREMOCK_VERSION tuned, ${PEER_WARMUP} s warm-up" "$WM_RPS" "$WM_P50" "$WM_P99" "$WM_CPU" "$WM_RPS1" "$WM_P50_1" "$WM_RSS"
row "mockttp $MOCKTTP_VERSION" "$MT_RPS" "$MT_P50" "$MT_P99" "$MT_CPU" "$MT_RPS1" "$MT_P50_1" "$MT_RSS"
echo
echo "| target | figure in this run | |"
echo "|---|---|---|"
echo "| sends c32, webhooks held ≥ 3 × the best peer ($BEST_NAME, $BEST_PEER req/s) | $H_RPS req/s = $(ratio "$H_RPS" "$BEST_PEER") × | $(ge "$(ratio "$H_RPS" "$BEST_PEER")" 3) |"
echo "| sends c32, webhooks held ≥ 0.30 × the plain floor | $(ratio "$H_RPS" "$F_RPS") × | $(ge "$(ratio "$H_RPS" "$F_RPS")" 0.30) |"
echo "| sends c32 with 2 signed deliveries per send ≥ 0.6 × the webhook floor | $E_RPS req/s = $(ratio "$E_RPS" "$FH_RPS") × | $(ge "$(ratio "$E_RPS" "$FH_RPS")" 0.6) |"
echo "| server CPU per send ≤ 20 µs, webhooks held | $H_CPU µs | $(le "$H_CPU" 20) |"
echo "| server CPU per send ≤ 30 µs, with deliveries | $E_CPU µs | $(le "$E_CPU" 30) |"
echo "| p99 at c32 ≤ 2 × the floor's ($F_P99 ms), webhooks held | $H_P99 ms = $(ratio "$H_P99" "$F_P99") × | $(le "$(ratio "$H_P99" "$F_P99")" 2) |"
echo "| p99 at c32 ≤ 2 × the floor's, with deliveries | $E_P99 ms = $(ratio "$E_P99" "$F_P99") × | $(le "$(ratio "$E_P99" "$F_P99")" 2) |"
echo "| one-connection p50 ≤ 1.3 × the floor's ($F_P50_1 ms), webhooks held | $H_P50_1 ms = $(ratio "$H_P50_1" "$F_P50_1") × | $(le "$(ratio "$H_P50_1" "$F_P50_1")" 1.3) |"
echo "| RSS after $M_OK sends ≤ 64 MiB (webhooks to the sink, all delivered) | $E_RSS_1M MiB (peak $E_HWM_1M) | $(le "$E_RSS_1M" 64) |"
echo "| RSS after $D_OK sends to as many distinct recipients ≤ 128 MiB | $D_RSS MiB (peak $D_HWM) | $(le "$D_RSS" 128) |"
echo "| … last quarter's send rate within 10 % of the first | sends/s per quarter $D_Q: last ÷ first = $D_QR | $(ge "$D_QR" 0.9) |"
echo "| $SCENARIOS scenarios through \`wa-emulator run\` ≤ 5 s | $SUITE | $(le "$SUITE_S" 5) |"
echo
echo "| also measured | |"
echo "|---|---|"
echo "| start-up to healthy ms (p50 of 20): emulator / floor | $E_START / $F_START |"
echo "| idle RSS MiB: emulator / floor | $E_IDLE / $F_IDLE |"
echo "| held deliveries after the held runs | $H_PENDING pending (kept up to the delivery log's capacity; older ones counted in held_evicted) |"
echo "| signed deliveries/s, saturated pipeline | $(get deliveries_per_s "$PS") |"
echo "| request→delivery p50 / p99 ms, saturated | $(get delay_p50_ms "$PS") / $(get delay_p99_ms "$PS") |"
echo "| request→delivery p50 / p99 ms, $PACED_RATE sends/s | $(get delay_p50_ms "$PP") / $(get delay_p99_ms "$PP") |"
echo "| webhooks lost (made → received once, bad signatures) | wrk runs $W_MADE → $W_LOST lost, $W_BAD bad; pipeline $(get emulator_deliveries "$PS")+$(get emulator_deliveries "$PP") → $(( $(get lost "$PS") + $(get lost "$PP") )) lost, $(( $(get bad_signature "$PS") + $(get bad_signature "$PP") )) bad; 1M run $M_MADE → $M_LOST lost |"
echo "| the $M_OK-send run | $M_RPS sends/s, $M_EVICTED finished deliveries evicted from the log |"
echo "| the $D_OK-distinct-recipient run | $D_RPS sends/s |"
echo
echo "The webhook floor's sink received $FH_RECEIVED webhooks ($FH_BAD with a bad signature)."
echo "The wrk runs' webhooks took $W_WAIT s more to drain after wrk stopped and used $W_CONN TCP connections to the sink ($(get connections "$PS") in the saturated pipeline run)."
} | tee "$OUT/results.md"
echo >&2
echo "raw outputs: $OUT/" >&2
