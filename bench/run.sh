#!/usr/bin/env bash
# W1, W2 and W3 benchmarks: our compiled pipelines against the hand-written serde floor (W1),
# the Python floor and the peers of ../shared/bench-peers, on the same 2,000,000 events,
# measured in one run by bench.py (whole-process CPU seconds and peak RSS). Prints the summary
# table and checks every output against check.py's reference.
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
WORK="${BENCH_WORK:-/var/tmp/pulse-bench}"
N="${1:-2000000}"
REPS="${2:-3}"
export PEERS_WORK="${PEERS_WORK:-$WORK/peers}"
mkdir -p "$WORK/out" "$PEERS_WORK"
EVENTS="$WORK/events-$N.jsonl"
RESULTS="$WORK/results-$(date +%Y%m%d-%H%M%S).jsonl"

if [ ! -s "$EVENTS" ]; then
    echo "== generating $N events"
    python3 "$PEERS_DIR/gen_events.py" "$N" "$EVENTS"
fi

echo "== building the Rust floor"
CARGO_TARGET_DIR="$WORK/rust-target" cargo build --quiet --release --manifest-path "$PEERS_DIR/rust-floor/Cargo.toml"
FLOOR="$WORK/rust-target/release/rust-floor"

echo "== building pulsec and the pipelines"
cargo build --quiet --release -p pulsec --manifest-path "$ROOT/Cargo.toml"
for w in w1 w2 w3; do
    src="$ROOT/bench/$w.pulse"; [ -f "$src" ] || src="$ROOT/bench/$w.json"
    "${CARGO_TARGET_DIR:-$ROOT/target}/release/pulsec" build "$src" -o "$WORK/bench-$w"
done

bench() { python3 "$PEERS_DIR/bench.py" "$@"; }
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
echo "== summary ($RESULTS)"
python3 "$PEERS_DIR/summarize.py" "$RESULTS"
