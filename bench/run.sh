#!/usr/bin/env bash
# W1 benchmark: our compiled pipeline against the hand-written serde floor and the peers of
# ../shared/bench-peers, on the same 2,000,000 events, measured in one run by bench.py
# (whole-process CPU seconds and peak RSS). Prints the summary table and checks every output.
#
# usage: bench/run.sh [N_EVENTS] [REPS]
# env:   PEERS_DIR   peer scripts (default ../shared/bench-peers beside the repository)
#        BENCH_WORK  work directory for events, builds and outputs (default /var/tmp/pulse-bench)
#        PEERS       extra peers from run_peer.sh to include, e.g. "flink-java-hashmap bytewax"
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

echo "== building pulsec and the W1 pipeline"
cargo build --quiet --release -p pulsec --manifest-path "$ROOT/Cargo.toml"
"$ROOT/target/release/pulsec" build "$ROOT/bench/w1.json" -o "$WORK/bench-w1"

bench() { python3 "$PEERS_DIR/bench.py" "$@"; }
echo "== W1: pulse"
bench pulse-W1 "$REPS" --out "$WORK/out/pulse-w1" --events "$N" --results "$RESULTS" \
    -- "$WORK/bench-w1" run --quiet --input "$EVENTS" --output "$WORK/out/pulse-w1"
echo "== W1: rust floor (serde typed, borrowed)"
bench rust-floor-W1 "$REPS" --out "$WORK/out/floor-w1.jsonl" --events "$N" --results "$RESULTS" \
    -- "$FLOOR" w1-serde-typed "$EVENTS" "$WORK/out/floor-w1.jsonl"
echo "== W1: python floor"
bench python-floor-W1 "$REPS" --out "$WORK/out/python-w1" --events "$N" --results "$RESULTS" \
    -- "$PEERS_DIR/run_peer.sh" python-floor W1 "$EVENTS" "$WORK/out/python-w1"
outputs=("$WORK/out/pulse-w1/out.jsonl" "$WORK/out/floor-w1.jsonl" "$WORK/out/python-w1")
for peer in ${PEERS:-}; do
    echo "== W1: $peer"
    bench "$peer-W1" "$REPS" --out "$WORK/out/$peer-w1" --events "$N" --results "$RESULTS" \
        -- "$PEERS_DIR/run_peer.sh" "$peer" W1 "$EVENTS" "$WORK/out/$peer-w1"
    outputs+=("$WORK/out/$peer-w1")
done

echo "== check"
python3 "$PEERS_DIR/check.py" "$EVENTS" W1 "${outputs[@]}"
echo "== summary ($RESULTS)"
python3 "$PEERS_DIR/summarize.py" "$RESULTS"
