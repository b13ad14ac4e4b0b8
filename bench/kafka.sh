#!/usr/bin/env bash
# Kafka benchmarks against a local tansu broker (memory storage, loopback): figures, not tests.
#
#  1. Throughput, topic to topic: N events preloaded into a 4-partition topic, then, REPS times
#     in turn on that same topic: a read_committed consume-only floor, the passthrough baseline
#     (consume -> produce every record, one transaction per second with the consumer offsets, as
#     Pulse commits; and an at-least-once variant), W1 written by hand on the same clients, and
#     the Pulse pipelines bench/kafka-w1.pulse and bench/kafka-w2.pulse (--until-end, W2 with
#     RocksDB state). Each run is timed from process start to the Kafka CreateTime of its last
#     output record (the moment it was produced), so --until-end's 4 s of quiet and the client
#     shutdown are left out (reported apart as the tail); CPU is the process's utime+stime
#     sampled every 20 ms, read at that same moment. The first round's outputs are checked with
#     check.py.
#  2. End-to-end latency at fixed input rates (RATES): the producer stamps each event with its
#     wall-clock send time (`sent_us`); the system under test copies it to its output; the latency
#     consumer (read_committed) subtracts it from the wall clock when poll() returns the record.
#     Systems: the direct path (producer -> consumer, no pipeline: the harness floor), Pulse
#     (bench/kafka-latency.pulse) at-least-once (1 s checkpoints) and exactly-once (100 ms), and
#     the passthrough baseline in both modes, plus LAT_EXTRA. Also available: pulse-keyed and
#     pulse-repartition, the same with keyed state (a capping that passes everything) on a topic
#     declared keyed by userId, and undeclared (through the repartition topic). A fresh broker per run; the first
#     WARM seconds are left out; readiness is checked end to end with a probe before the stream
#     starts.
#  3. Recovery after SIGKILL: bench/kafka-recovery.pulse (keyed state in RocksDB, checkpoint every
#     1 s) on a live stream, SIGKILLed after 10 s and restarted at once with the same
#     --state-dir, twice in the same consumer group: time from restart to
#     the first record it produced and to that record becoming visible, time until latency is back
#     to normal, duplicates visible to read_committed, and whether every input record is in the
#     output. Also a takeover: two instances share the topic, one is SIGKILLed, the other takes
#     over its partitions and their state (time until latency is back to normal).
#
# Consumers run with fetch.wait.max.ms=10 and fetch.error.backoff.ms=5 (PULSE_KAFKA_PROP_*,
# KT_PROP_*): with librdkafka's defaults (500 ms), tansu holds every fetch for the full wait and
# the latency figures measure that wait, not the pipeline (one Pulse run with the defaults is
# included for comparison). The paced producer keeps librdkafka's default linger (5 ms): with
# 1 ms, tansu spends most of a core on small produce requests. Group sessions are 3 s with a
# 1 s heartbeat.
#
# usage: bench/kafka.sh [N_EVENTS]     (default 500000; about 9.5 minutes on 2 cores)
# env:   BENCH_WORK  work directory (default /var/tmp/pulse-bench); results in $BENCH_WORK/kafka/run-*
#        PEERS_DIR   gen_events.py and check.py (default ../shared/bench-peers beside the repository)
#        REPS (3)  RATES ("10000 50000")  LAT_SECONDS (10)  WARM (3)  REC_RATE (10000)
#        EOS_INTERVAL_MS (100), ALO_INTERVAL_MS (1000): checkpoint/commit interval of the latency runs
#        PART        which parts to run (default "throughput latency recovery")
#        LAT_SYSTEMS latency systems at every rate (default "direct pulse-alo pulse-eos passthrough-alo
#                    passthrough-eos"; SYSTEM@MS: another commit interval)
#        LAT_EXTRA   RATE:SYSTEM pairs run after those (default "10000:pulse-eos-default-fetch
#                    50000:pulse-eos@250 50000:passthrough-eos@250")
#        REC_RUNS    recovery runs, each `same` or `takeover` (default "same same takeover takeover")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/bench-peers}"
# The peers' generator when they are there (the published figures used it), else Pulse's own.
GEN="$PEERS_DIR/gen_events.py"
[ -f "$GEN" ] || GEN="$ROOT/bench/gen_events.py"
WORK="${BENCH_WORK:-/var/tmp/pulse-bench}"
N="${1:-500000}"
REPS="${REPS:-3}"
RATES="${RATES:-10000 50000}"
LAT_SECONDS="${LAT_SECONDS:-10}"
WARM="${WARM:-3}"
REC_RATE="${REC_RATE:-10000}"
EOS_INTERVAL_MS="${EOS_INTERVAL_MS:-100}"
ALO_INTERVAL_MS="${ALO_INTERVAL_MS:-1000}"
LAT_SYSTEMS="${LAT_SYSTEMS:-direct pulse-alo pulse-eos passthrough-alo passthrough-eos}"
LAT_EXTRA="${LAT_EXTRA-10000:pulse-eos-default-fetch 50000:pulse-eos@250 50000:passthrough-eos@250}"
REC_RUNS="${REC_RUNS:-same same takeover takeover}"
PART="${PART:-throughput latency recovery}"
export ROCKSDB_LIB_DIR="${ROCKSDB_LIB_DIR:-/usr/lib/x86_64-linux-gnu}"
KWORK="$WORK/kafka"
RUN="$KWORK/run-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RUN"
EVENTS="$WORK/events-$N.jsonl"
REPORT=(python3 "$ROOT/bench/kafka_report.py" "$RUN")
log() { echo "== $*" | tee -a "$RUN/log.txt"; }
now_us() { date +%s%6N; }

if [ ! -s "$EVENTS" ]; then
    log "generating $N events"
    python3 "$GEN" "$N" "$EVENTS"
fi

log "building kafka-tools (bench/kafka-tools, sharing the workspace target directory), pulsec, the pipelines"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
CARGO_TARGET_DIR="$TARGET" cargo build --quiet --release --manifest-path "$ROOT/bench/kafka-tools/Cargo.toml"
KT="$TARGET/release/kafka-tools"
CARGO_TARGET_DIR="$TARGET" cargo build --quiet --release -p pulsec --manifest-path "$ROOT/Cargo.toml"
sed -e 's/exactly-once/at-least-once/' -e 's/^pipeline bench-kafka-latency$/pipeline bench-kafka-latency-alo/' \
    "$ROOT/bench/kafka-latency.pulse" > "$RUN/kafka-latency-alo.pulse"
# Keyed state on the latency path (a capping that passes everything), with the topic declared
# keyed by userId (as the producer keys it) and without: the second goes through the repartition
# topic.
sed -e 's/^pipeline bench-kafka-latency$/pipeline bench-kafka-latency-keyed/' \
    -e 's/^events: kafka-source("kafka-lat-in")$/events: kafka-source("kafka-lat-in") { keyBy: userId }/' \
    -e 's/^  -> users: filter(userId != null)$/&\n  -> cap: capping(1000000000, 1s) by userId/' \
    "$ROOT/bench/kafka-latency.pulse" > "$RUN/kafka-latency-keyed.pulse"
sed -e 's/^pipeline bench-kafka-latency-keyed$/pipeline bench-kafka-latency-repartition/' -e 's/ { keyBy: userId }$//' \
    "$RUN/kafka-latency-keyed.pulse" > "$RUN/kafka-latency-repartition.pulse"
for src in "$ROOT"/bench/kafka-{w1,w2,latency,recovery}.pulse "$RUN"/kafka-latency-{alo,keyed,repartition}.pulse; do
    name=$(basename "$src" .pulse)
    "$TARGET/release/pulsec" build "$src" -o "$KWORK/bench-$name" > "$RUN/build-$name.log" 2>&1 \
        || { cat "$RUN/build-$name.log"; exit 3; }
done

# The broker binary is linked under another name, so that a `pkill tansu` aimed at other
# brokers on this shared machine does not take this one down mid-run.
ln -sf "$(bash "$ROOT/scripts/tansu-path")" "$KWORK/kbench-broker"
BROKER_PID=""
PIDS=()  # background processes of this script not yet waited for
cleanup() {
    for pid in "${PIDS[@]}" $BROKER_PID; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
reap() {  # waits for a background process of this script and forgets it
    wait "$1" 2>/dev/null || true
    local keep=() pid
    for pid in "${PIDS[@]}"; do [ "$pid" = "$1" ] || keep+=("$pid"); done
    PIDS=("${keep[@]}")
}
start_broker() {
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$KWORK/kbench-broker" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ >> "$RUN/broker.log" 2>&1 &
    BROKER_PID=$!
    export PULSE_KAFKA_BROKERS="127.0.0.1:$port"
    for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && return; sleep 0.1; done
    echo "the broker did not listen on $port" >&2; exit 1
}
stop_broker() {
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
}
broker_alive() { kill -0 "$BROKER_PID" 2>/dev/null || { echo "the broker died (see $RUN/broker.log)" >&2; exit 1; }; }

export PULSE_KAFKA_PROP_SESSION_TIMEOUT_MS=3000 PULSE_KAFKA_PROP_HEARTBEAT_INTERVAL_MS=1000
export KT_PROP_SESSION_TIMEOUT_MS=3000 KT_PROP_HEARTBEAT_INTERVAL_MS=1000
fast_fetch() {
    export PULSE_KAFKA_PROP_FETCH_WAIT_MAX_MS=10 PULSE_KAFKA_PROP_FETCH_ERROR_BACKOFF_MS=5
    export KT_PROP_FETCH_WAIT_MAX_MS=10 KT_PROP_FETCH_ERROR_BACKOFF_MS=5
}
default_fetch() {
    unset PULSE_KAFKA_PROP_FETCH_WAIT_MAX_MS PULSE_KAFKA_PROP_FETCH_ERROR_BACKOFF_MS
    unset KT_PROP_FETCH_WAIT_MAX_MS KT_PROP_FETCH_ERROR_BACKOFF_MS
}
# Librdkafka warns that consumer properties do not apply to the producer: expected here.
quiet_log() { grep -v 'CONFWARN' "$1" || true; }

# --- 1. throughput --------------------------------------------------------------------------
if [[ " $PART " == *" throughput "* ]]; then
    fast_fetch
    start_broker
    log "throughput: broker $PULSE_KAFKA_BROKERS, preloading $N events into kafka-w1-in (4 partitions)"
    "$KT" create-topics kafka-w1-in:4 kafka-w1-out:4 kafka-w2-out:4 pt-eos-out:4 pt-alo-out:4 hand-w1-out:4 > /dev/null
    "$KT" produce kafka-w1-in "$EVENTS" | tee "$RUN/preload.json"
    # system, output topic, command
    tp_run() {
        local system=$1 topic=$2 rep=$3; shift 3
        local base="$RUN/tp-$system-$rep"
        broker_alive
        PULSE_KAFKA_GROUP_ID="$system-$rep-$$" "$KT" sample --out "$base.samples" --watch "$BROKER_PID" -- "$@" \
            > "$base.out" 2> "$base.err" || { quiet_log "$base.err"; echo "$system failed" >&2; exit 1; }
        printf '{"system":"%s","rep":%s,"topic":"%s","samples":"%s","stdout":"%s"}\n' \
            "$system" "$rep" "$topic" "$base.samples" "$base.out" >> "$RUN/throughput.jsonl"
        echo "   $system rep $rep: $("${REPORT[@]}" one-run "$base.samples" "$topic" "$base.out" "$N")"
    }
    for rep in $(seq "$REPS"); do
        log "throughput rep $rep/$REPS"
        tp_run consume-only "" "$rep" "$KT" consume kafka-w1-in --count "$N" --quiet 0
        tp_run passthrough-eos pt-eos-out "$rep" "$KT" passthrough kafka-w1-in pt-eos-out --count "$N" --interval 1000
        tp_run passthrough-alo pt-alo-out "$rep" "$KT" passthrough kafka-w1-in pt-alo-out --count "$N" --interval 1000 --alo
        tp_run hand-w1-eos hand-w1-out "$rep" "$KT" passthrough kafka-w1-in hand-w1-out --count "$N" --interval 1000 --w1
        tp_run pulse-w1 kafka-w1-out "$rep" "$KWORK/bench-kafka-w1" run --until-end --dead-letter "$RUN/dead-w1.jsonl"
        rm -rf "$RUN/state-w2"
        tp_run pulse-w2 kafka-w2-out "$rep" "$KWORK/bench-kafka-w2" run --until-end --state-dir "$RUN/state-w2" \
            --dead-letter "$RUN/dead-w2.jsonl"
    done
    log "throughput: reading the outputs back (read_committed) and checking them"
    for topic in pt-eos-out pt-alo-out hand-w1-out kafka-w1-out kafka-w2-out; do
        # --out: the first run's records (check.py checks one run, duplicates included).
        "$KT" consume "$topic" --quiet 2 --out "$RUN/out-$topic.jsonl" \
            --windows "$("${REPORT[@]}" windows "$topic")" --out-window 0 > "$RUN/consume-$topic.json"
    done
    for pair in hand-w1-out:W1 kafka-w1-out:W1 kafka-w2-out:W2; do
        if [ -f "$PEERS_DIR/check.py" ]; then
            python3 "$PEERS_DIR/check.py" "$EVENTS" "${pair#*:}" "$RUN/out-${pair%:*}.jsonl" | tee -a "$RUN/check.txt" || true
        fi
    done
    stop_broker
fi

# --- 2. latency -----------------------------------------------------------------------------
# Starts SYSTEM on kafka-lat-in -> kafka-lat-out (on a fresh broker), checks it is live with a
# probe, then streams RATE events/s for WARM + LAT_SECONDS seconds while the latency consumer
# reads the output.
lat_run() {
    local system=$1 rate=$2
    local base="$RUN/lat-$system-$rate" out_topic=kafka-lat-out pid="" round=1
    # A system named again at the same rate (interleaved rounds) gets files of its own.
    while [ -e "$base.json" ]; do round=$((round + 1)); base="$RUN/lat-$system-$rate-r$round"; done
    start_broker
    "$KT" create-topics kafka-lat-in:4 kafka-lat-out:4 > /dev/null
    local group="lat-$system-$rate-$$"
    # Exactly-once output becomes visible at each commit: a short interval. At-least-once output
    # is visible once produced; its commits only record positions: the usual 1 s.
    # SYSTEM@MS sets another interval.
    local interval_ms=$EOS_INTERVAL_MS kind=${system%@*}
    [[ $kind == *alo ]] && interval_ms=$ALO_INTERVAL_MS
    [[ $system == *@* ]] && interval_ms=${system#*@}
    case $kind in
        direct) out_topic=kafka-lat-in ;;
        pulse-eos*|pulse-alo|pulse-keyed|pulse-repartition)
            local binary="$KWORK/bench-kafka-latency"
            case $kind in
                pulse-alo) binary="$KWORK/bench-kafka-latency-alo" ;;
                pulse-keyed) binary="$KWORK/bench-kafka-latency-keyed" ;;
                pulse-repartition) binary="$KWORK/bench-kafka-latency-repartition" ;;
            esac
            rm -rf "$base.state"
            PULSE_KAFKA_GROUP_ID=$group "$KT" sample --out "$base.samples" --pidfile "$base.pid" --watch "$BROKER_PID" -- \
                "$binary" run --state-dir "$base.state" --checkpoint-interval "${interval_ms}ms" --dead-letter "$base.dead.jsonl" \
                > /dev/null 2> "$base.err" &
            pid=$! ;;
        passthrough-eos|passthrough-alo)
            local mode=(); [ "$kind" = passthrough-alo ] && mode=(--alo)
            rm -f "$base.stop"
            "$KT" sample --out "$base.samples" --pidfile "$base.pid" --watch "$BROKER_PID" -- \
                "$KT" passthrough kafka-lat-in kafka-lat-out --interval "$interval_ms" --stop-file "$base.stop" --group "$group" \
                "${mode[@]}" > "$base.out" 2> "$base.err" &
            pid=$! ;;
    esac
    [ -n "$pid" ] && PIDS+=("$pid")
    # Readiness, end to end: a few stamped probe events must come out before the stream starts.
    local ready_start; ready_start=$(now_us)
    "$KT" produce kafka-lat-in "$EVENTS" --count 20 --stamp > /dev/null
    "$KT" consume "$out_topic" --count 1 --quiet 0 --timeout 60 > "$base.probe.json"
    grep -q '"timed_out":false' "$base.probe.json" || { quiet_log "$base.err"; echo "$system: no output within 60 s" >&2; exit 1; }
    local ready_s; ready_s=$(( ($(now_us) - ready_start) / 1000 ))
    local from_us=$(( $(now_us) + WARM * 1000000 ))
    "$KT" latency "$out_topic" --from-us "$from_us" --idle 3 --timeout $((WARM + LAT_SECONDS + 60)) --csv "$base.csv" \
        > "$base.json" &
    local lat_pid=$!
    PIDS+=("$lat_pid")
    "$KT" produce kafka-lat-in "$EVENTS" --rate "$rate" --duration $((WARM + LAT_SECONDS)) --stamp > "$base.produce.json"
    reap "$lat_pid"
    broker_alive
    if [ -n "$pid" ]; then
        # Pulse stops on SIGTERM after a last checkpoint; the baseline after a last commit.
        case $kind in
            passthrough*) touch "$base.stop" ;;
            *) kill -TERM "$(cat "$base.pid")" 2>/dev/null || true ;;
        esac
        reap "$pid"
    fi
    printf '{"system":"%s","rate":%s,"base":"%s","ready_ms":%s,"from_us":%s,"fetch":"%s","interval_ms":%s}\n' "$system" \
        "$rate" "$base" "$ready_s" "$from_us" "${PULSE_KAFKA_PROP_FETCH_WAIT_MAX_MS:-default}" "$interval_ms" >> "$RUN/latency.jsonl"
    echo "   $system at $rate/s: $("${REPORT[@]}" one-latency "$base")"
    stop_broker
}
if [[ " $PART " == *" latency "* ]]; then
    for rate in $RATES; do
        log "latency at $rate events/s (${WARM}s warm-up + ${LAT_SECONDS}s measured)"
        extra=()
        for item in $LAT_EXTRA; do [ "${item%%:*}" = "$rate" ] && extra+=("${item#*:}"); done
        for system in $LAT_SYSTEMS "${extra[@]}"; do
            # *-default-fetch: every consumer with librdkafka's fetch defaults.
            if [[ $system == *default-fetch* ]]; then default_fetch; else fast_fetch; fi
            lat_run "$system" "$rate"
        done
    done
fi

# --- 3. recovery after SIGKILL --------------------------------------------------------------
# The pipeline consumes a live stream (REC_RATE events/s for 30 s), is SIGKILLed after 10 s and
# restarted at once with the same --state-dir and PULSE_INSTANCE_ID (so the same
# transactional.id, which fences the killed producer). GROUP: `same` restarts in the same
# consumer group (what a restarted pod does); `takeover` runs two instances (ids a and b, own
# state directories) in one group, SIGKILLs b and restarts nothing: a takes over b's
# partitions, their state from the changelog. (A restart in another group is refused: the
# state directory belongs to the first group's changelog.)
rec_run() {
    local mode=$1 name="$1-$2" base="$RUN/rec-$1-$2" pid child round=1
    while [ -e "$base.json" ]; do round=$((round + 1)); base="$RUN/rec-$1-$2-r$round"; done
    start_broker
    "$KT" create-topics kafka-rec-in:4 kafka-rec-out:4 > /dev/null
    rm -rf "$base".state*
    rec_start() {  # GROUP LABEL [ID LOG]: the pipeline under the CPU sampler (pid: the sampler, child: the pipeline)
        PULSE_INSTANCE_ID=${3:-0} PULSE_KAFKA_GROUP_ID="$1" "$KT" sample --out "$base.$2.samples" --pidfile "$base.$2.pid" \
            --watch "$BROKER_PID" -- "$KWORK/bench-kafka-recovery" run --state-dir "$base.state${3:+-$3}" --checkpoint-interval 1s \
            --dead-letter "$base.dead${3:+-$3}.jsonl" >> "${4:-$base.pipeline.log}" 2>&1 &
        pid=$!
        PIDS+=("$pid")
        for _ in $(seq 200); do [ -s "$base.$2.pid" ] && break; sleep 0.01; done
        child=$(cat "$base.$2.pid")
    }
    local survivor_pid=""
    if [ "$mode" = takeover ]; then
        # The survivor's samples and log are the ones the report reads as the restarted run's.
        rec_start "rec-$$-$name" restarted a
        survivor_pid=$pid
        rec_start "rec-$$-$name" first b "$base.pipeline-b.log"
    else
        rec_start "rec-$$-$name" first
    fi
    "$KT" produce kafka-rec-in "$EVENTS" --count 20 --stamp > "$base.probe-produce.json"
    "$KT" consume kafka-rec-out --count 1 --quiet 0 --timeout 60 > "$base.probe.json"
    local produce_start; produce_start=$(now_us)
    "$KT" latency kafka-rec-out --idle 5 --not-before-us $((produce_start + 35000000)) --timeout 120 --csv "$base.csv" \
        > "$base.json" &
    local lat_pid=$!
    "$KT" produce kafka-rec-in "$EVENTS" --rate "$REC_RATE" --duration 30 --stamp > "$base.produce.json" &
    local producer_pid=$!
    PIDS+=("$lat_pid" "$producer_pid")
    sleep 10
    kill -KILL "$child"
    local kill_us; kill_us=$(now_us)
    reap "$pid"
    local restart_us=$kill_us
    if [ "$mode" = takeover ]; then
        pid=$survivor_pid
        child=$(cat "$base.restarted.pid")
    else
        rec_start "rec-$$-$name" restarted
        restart_us=$(head -1 "$base.restarted.samples" | cut -d' ' -f2)
    fi
    reap "$producer_pid"
    reap "$lat_pid"
    broker_alive
    kill -TERM "$child" 2>/dev/null || true
    reap "$pid"
    printf '{"name":"%s","group":"%s","base":"%s","produce_start_us":%s,"kill_us":%s,"restart_us":%s,"rate":%s,"events":"%s"}\n' \
        "$name" "$mode" "$base" "$produce_start" "$kill_us" "$restart_us" "$REC_RATE" "$EVENTS" >> "$RUN/recovery.jsonl"
    echo "   restart in the $mode group (run $2): $("${REPORT[@]}" one-recovery "$name")"
    stop_broker
}
if [[ " $PART " == *" recovery "* ]]; then
    fast_fetch
    # The stream is the events file from its start, cycled: once it wraps, event time jumps back
    # ten days and the keyed operator drops everything as late.
    if [ "$N" -lt $((REC_RATE * 30 + 20)) ]; then
        echo "warning: recovery streams $((REC_RATE * 30)) events but the file has $N: its figures will be wrong" >&2
    fi
    log "recovery: bench-kafka-recovery at $REC_RATE events/s, checkpoint every 1 s, SIGKILL after 10 s, restart"
    declare -A rec_count=()
    for mode in $REC_RUNS; do
        rec_count[$mode]=$(( ${rec_count[$mode]:-0} + 1 ))
        rec_run "$mode" "${rec_count[$mode]}"
    done
fi

log "summary ($RUN)"
"${REPORT[@]}" summary "$N" | tee "$RUN/summary.md"
