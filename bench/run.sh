#!/usr/bin/env bash
# W1, W2 and W3 benchmarks: our compiled pipelines against the hand-written serde floor (W1),
# the Python floor and the peers of ../shared/bench-peers, on the same 2,000,000 events,
# measured in one run by bench.py (whole-process CPU seconds and peak RSS). Prints the summary
# table and checks every output against check.py's reference. Without ../shared/bench-peers it
# times Pulse alone on events from bench/gen_events.py.
#
# usage: bench/run.sh [N_EVENTS] [REPS]
# env:   PEERS_DIR   peer scripts (default ../shared/bench-peers beside the repository)
#        BENCH_WORK  work directory for events, builds and outputs (default /var/tmp/pulse-bench)
#        WORKLOADS   which of W1 W2 W3 to run (default: all three)
#        PEERS       extra peers from run_peer.sh to include, e.g. "flink-java-rocksdb bytewax"
#                    (they need the peers' setup.sh to have run with PEERS_WORK=$BENCH_WORK/peers)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/bench-peers}"
# The peers' generator when they are there (the published figures used it), else Pulse's own.
GEN="$PEERS_DIR/gen_events.py"
[ -f "$GEN" ] || GEN="$ROOT/bench/gen_events.py"
WORK="${BENCH_WORK:-/var/tmp/pulse-bench}"
N="${1:-2000000}"
REPS="${2:-3}"
export PEERS_WORK="${PEERS_WORK:-$WORK/peers}"
mkdir -p "$WORK/out" "$PEERS_WORK"
EVENTS="$WORK/events-$N.jsonl"
RESULTS="$WORK/results-$(date +%Y%m%d-%H%M%S).jsonl"

if [ ! -s "$EVENTS" ]; then
    echo "== generating $N events"
    python3 "$GEN" "$N" "$EVENTS"
fi

# Without the peer scripts: Pulse alone, timed here (no floor, no peers, no reference check).
HAVE_PEERS=0
[ -f "$PEERS_DIR/bench.py" ] && HAVE_PEERS=1
if [ "$HAVE_PEERS" = 1 ]; then
    echo "== building the Rust floor"
    CARGO_TARGET_DIR="$WORK/rust-target" cargo build --quiet --release --manifest-path "$PEERS_DIR/rust-floor/Cargo.toml"
    FLOOR="$WORK/rust-target/release/rust-floor"
else
    echo "== $PEERS_DIR not found: timing Pulse alone (no floor, peers or reference check)"
fi

echo "== building pulsec and the pipelines"
cargo build --quiet --release -p pulsec --manifest-path "$ROOT/Cargo.toml"
for w in w1 w2 w3; do
    src="$ROOT/bench/$w.pulse"; [ -f "$src" ] || src="$ROOT/bench/$w.json"
    "${CARGO_TARGET_DIR:-$ROOT/target}/release/pulsec" build "$src" -o "$WORK/bench-$w"
done

# bench NAME REPS [--flag value]... -- COMMAND...: bench.py's measurement, or whole-process CPU
# seconds and peak RSS per run from /usr/bin/time without the peers.
bench() {
    if [ "$HAVE_PEERS" = 1 ]; then
        python3 "$PEERS_DIR/bench.py" "$@"
        return
    fi
    local name="$1" reps="$2"
    shift 2
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done
    shift
    for rep in $(seq "$reps"); do
        /usr/bin/time -f "%U %S %M" -o "$WORK/time.txt" "$@"
        read -r user sys rss < "$WORK/time.txt"
        python3 -c "print(f'$name run $rep: {$user + $sys:.2f} CPU-s, peak RSS {$rss / 1024:.0f} MB')"
    done
}
for W in ${WORKLOADS:-W1 W2 W3}; do
    w=$(echo "$W" | tr 'A-Z' 'a-z')
    echo "== $W: pulse"
    # W2 and W3 keep keyed state in RocksDB (--state-dir), with checkpoints every 10 s.
    state=()
    if [ "$W" != "W1" ]; then
        rm -rf "$WORK/state-$w"
        state=(--state-dir "$WORK/state-$w")
    fi
    bench "pulse-$W" "$REPS" --out "$WORK/out/pulse-$w" --events "$N" --results "$RESULTS" \
        -- bash -c 'rm -rf "$1"; shift; exec "$@"' _ "$WORK/state-$w" \
           "$WORK/bench-$w" run --quiet --input "$EVENTS" --output "$WORK/out/pulse-$w" "${state[@]}"
    outputs=("$WORK/out/pulse-$w/out.jsonl")
    [ "$HAVE_PEERS" = 1 ] || continue
    if [ "$W" = "W1" ]; then
        echo "== W1: rust floor (serde typed, borrowed)"
        bench rust-floor-W1 "$REPS" --out "$WORK/out/floor-w1.jsonl" --events "$N" --results "$RESULTS" \
            -- "$FLOOR" w1-serde-typed "$EVENTS" "$WORK/out/floor-w1.jsonl"
        outputs+=("$WORK/out/floor-w1.jsonl")
    fi
    for peer in python-floor ${PEERS:-}; do
        echo "== $W: $peer"
        bench "$peer-$W" "$REPS" --out "$WORK/out/$peer-$w" --events "$N" --results "$RESULTS" \
            -- "$PEERS_DIR/run_peer.sh" "$peer" "$W" "$EVENTS" "$WORK/out/$peer-$w" || continue
        outputs+=("$WORK/out/$peer-$w")
    done
    echo "== check $W"
    python3 "$PEERS_DIR/check.py" "$EVENTS" "$W" "${outputs[@]}" || true
done
if [ "$HAVE_PEERS" = 1 ]; then
    echo "== summary ($RESULTS)"
    python3 "$PEERS_DIR/summarize.py" "$RESULTS"
fi
