#!/usr/bin/env bash
# Media pacing: how many concurrent WebRTC calls the emulator carries in real time.
#   bash emulator/bench/media.sh
# Builds wa-emulator and the media_peer example in release mode once; for each N in
# BENCH_MEDIA_STEPS starts a fresh `wa-emulator serve --clock real` pinned to one CPU and
# runs N business peers (str0m, examples/media_peer.rs) pinned to the other: the user
# calls, each peer answers through /calls pre_accept + accept, completes ICE and DTLS and
# sends opus every 20 ms, and the arrival of the emulator's audio packets is timed for
# BENCH_MEDIA_SECONDS. Stops after the first step whose p99 jitter exceeds
# BENCH_MEDIA_TARGET_MS or where a call did not connect. Prints a Markdown table and the
# figure; raw outputs in $BENCH_OUT (target/bench/media-*.txt).
# Not part of the test suite; loopback only; every step bounded in time. Knobs:
#   BENCH_MEDIA_STEPS="1 10 25 50 100 200" BENCH_MEDIA_SECONDS=10 BENCH_MEDIA_TARGET_MS=5
#   BENCH_SERVER_CPU=0 BENCH_LOAD_CPU=1 BENCH_OUT=target/bench BENCH_SKIP_BUILD=1
#   BENCH_MEDIA_PORT=4120
#   BENCH_MEDIA_PRIO="chrt -f 10" (a command prefix for both processes, e.g. real-time
#     FIFO priority or "nice -n -10": on a machine shared with other work, the time
#     slices of others' compilers otherwise decide the tail; needs root. Both processes
#     sleep most of the time, and the kernel caps real-time tasks at 95 % of a CPU)
#   BENCH_MEDIA_ALL=1 (run every step even after one misses the target)
set -euo pipefail
cd "$(dirname "$0")/../.."

STEPS=${BENCH_MEDIA_STEPS:-1 10 25 50 100 200}
SECONDS_PER_STEP=${BENCH_MEDIA_SECONDS:-10}
TARGET=${BENCH_MEDIA_TARGET_MS:-5}
SCPU=${BENCH_SERVER_CPU:-0}
LCPU=${BENCH_LOAD_CPU:-1}
OUT=${BENCH_OUT:-target/bench}
EMU=127.0.0.1:${BENCH_MEDIA_PORT:-4120}
mkdir -p "$OUT"

step() { printf '\n==> %s\n' "$*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }
for t in taskset curl awk getconf; do command -v $t >/dev/null || die "$t is needed"; done

BIN=${CARGO_TARGET_DIR:-target}/release
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    step "building release binaries (wa-emulator, example media_peer)"
    cargo build --release -q -p wa-emulator-cli --bin wa-emulator
    cargo build --release -q -p wa-emulator --example media_peer
fi
EMU_BIN=$BIN/wa-emulator
PEER_BIN=$BIN/examples/media_peer
for b in "$EMU_BIN" "$PEER_BIN"; do [ -x "$b" ] || die "$b is missing"; done

# Only the processes started here are ever stopped.
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
stop() { # SIGTERM, then SIGKILL after 3 s
    kill "$1" 2>/dev/null || return 0
    for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.01; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
wait_up() { # url: up to 10 s
    for _ in $(seq 1 1000); do curl -sf -o /dev/null --max-time 0.5 "$1" && return 0; sleep 0.01; done
    die "$1 did not come up"
}
get() { grep -m1 "^$1=" "$2" | cut -d= -f2-; }
! curl -s -o /dev/null --max-time 0.5 "http://$EMU/" 2>/dev/null || die "$EMU is in use; set BENCH_MEDIA_PORT"

CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
step "machine: $(nproc) CPU ($CPU_MODEL), Linux $(uname -r); load average $LOAD"

PRIO=()
[ -z "${BENCH_MEDIA_PRIO:-}" ] || read -r -a PRIO <<<"$BENCH_MEDIA_PRIO"

ROWS=()
MISSED=
BEST=0
FIRST_USER=16315500000
for n in $STEPS; do
    step "N=$n: ${SECONDS_PER_STEP}s"
    f="$OUT/media-$n.txt"
    ${PRIO[@]+"${PRIO[@]}"} taskset -c "$SCPU" "$EMU_BIN" serve --addr "$EMU" --clock real >"$OUT/media-emulator-$n.log" 2>&1 & P=$!; PIDS+=("$P")
    wait_up "http://$EMU/__emulator/health"
    budget=$(( SECONDS_PER_STEP + 60 + n / 2 ))
    if ! timeout "$budget" ${PRIO[@]+"${PRIO[@]}"} taskset -c "$LCPU" "$PEER_BIN" --emulator "$EMU" --calls "$n" \
        --seconds "$SECONDS_PER_STEP" --pid "$P" --clk-tck "$(getconf CLK_TCK)" \
        --first-user "$FIRST_USER" >"$f" 2>"$OUT/media-$n.err"; then
        stop "$P"
        echo "bench: N=$n failed: $(cat "$OUT/media-$n.err")" >&2
        ROWS+=("| $n | failed | | | | | | | | | |")
        break
    fi
    stop "$P"
    FIRST_USER=$(( FIRST_USER + n ))
    conn=$(get connected "$f"); heard=$(get emulator_heard "$f")
    pk=$(get packets "$f"); exp=$(get expected_packets "$f")
    p50=$(get jitter_p50_ms "$f"); p99=$(get jitter_p99_ms "$f"); mx=$(get jitter_max_ms "$f")
    own=$(get peer_lateness_p99_ms "$f")
    ecpu=$(get emulator_cpu_pct "$f"); pcpu=$(get peer_cpu_pct "$f"); rss=$(get emulator_rss_mib "$f")
    ROWS+=("| $n | $conn | $heard | $pk / $exp | $p50 | $p99 | $mx | $own | $ecpu | $pcpu | $rss |")
    ok=$(awk -v p="$p99" -v t="$TARGET" -v c="$conn" -v n="$n" -v k="$pk" \
        'BEGIN { print (p + 0 <= t + 0 && c + 0 == n + 0 && k + 0 > 0) ? 1 : 0 }')
    if [ "$ok" = 1 ]; then
        [ -n "$MISSED" ] || BEST=$n
    else
        MISSED=1
        reason="p99 ${p99} ms > ${TARGET} ms"
        [ "$conn" = "$n" ] || reason="$conn of $n calls connected ($(get first_failure "$f"))"
        step "missed: $reason"
        [ -n "${BENCH_MEDIA_ALL:-}" ] || break
    fi
done

{
    echo
    echo "| calls | connected | emulator heard the peer | packets received / expected | jitter p50 ms | p99 ms | max ms | peer's own lateness p99 ms | emulator CPU % | peer CPU % | emulator RSS MiB |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Jitter: |interval − 20 ms| between consecutive audio packets of a call, at the peer's socket, over ${SECONDS_PER_STEP} s per step. The peer's own lateness: how late its own frames went out, the machine's scheduling noise on the other CPU. CPU %: of one core. Priority: ${BENCH_MEDIA_PRIO:-default}. Load average before: $LOAD."
    echo "largest N with p99 jitter ≤ ${TARGET} ms: $BEST"
} | tee "$OUT/media-table.md"
