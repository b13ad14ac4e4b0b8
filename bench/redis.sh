#!/usr/bin/env bash
# Redis sink throughput: a pipeline writing one HSET per event (bench/redis.pulse) against
# `redis-benchmark -t hset -P 64` (pipelined HSETs, the floor) on the same redis-server.
# Prints events/s and CPU-s per million writes for both.
#
# usage: bench/redis.sh [N_EVENTS]      env: BENCH_WORK (default /var/tmp/pulse-bench), PEERS_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/bench-peers}"
# The peers' generator when they are there (the published figures used it), else Pulse's own.
GEN="$PEERS_DIR/gen_events.py"
[ -f "$GEN" ] || GEN="$ROOT/bench/gen_events.py"
WORK="${BENCH_WORK:-/var/tmp/pulse-bench}"
N="${1:-1000000}"
PORT=6391
mkdir -p "$WORK"
EVENTS="$WORK/events-$N.jsonl"
[ -s "$EVENTS" ] || python3 "$GEN" "$N" "$EVENTS"

cargo build --quiet --release -p pulsec --manifest-path "$ROOT/Cargo.toml"
"${CARGO_TARGET_DIR:-$ROOT/target}/release/pulsec" build "$ROOT/bench/redis.pulse" -o "$WORK/bench-redis"

redis-server --port "$PORT" --save '' --appendonly no --daemonize no > "$WORK/redis.log" 2>&1 &
REDIS_PID=$!
trap 'kill $REDIS_PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

writes=$(grep -c -v '"userId":null' "$EVENTS")
echo "== pulse: $writes HSETs from $N events"
/usr/bin/time -f "%e %U %S %M" -o "$WORK/redis-time.txt" \
    "$WORK/bench-redis" run --quiet --input "$EVENTS" --redis-url "redis://127.0.0.1:$PORT"
read -r wall user sys rss < "$WORK/redis-time.txt"
python3 - "$writes" "$wall" "$user" "$sys" "$rss" <<'PY'
import sys
writes, wall, user, sys_s, rss = int(sys.argv[1]), *map(float, sys.argv[2:6])
cpu = user + sys_s
print(f"pulse: {writes / wall:,.0f} writes/s (wall {wall:.2f} s), {cpu / writes * 1e6:.2f} CPU-s per million writes, peak RSS {rss / 1024:.0f} MB")
PY
echo "keys written: $(redis-cli -p "$PORT" dbsize)"

echo "== redis-benchmark -t hset -P 64 -n $writes"
redis-cli -p "$PORT" flushall >/dev/null
/usr/bin/time -f "%e %U %S" -o "$WORK/redis-bench-time.txt" \
    redis-benchmark -p "$PORT" -t hset -P 64 -n "$writes" -q
read -r bwall buser bsys < "$WORK/redis-bench-time.txt"
python3 - "$writes" "$bwall" "$buser" "$bsys" <<'PY'
import sys
writes, wall, user, sys_s = int(sys.argv[1]), *map(float, sys.argv[2:5])
print(f"redis-benchmark client: {writes / wall:,.0f} writes/s (wall {wall:.2f} s), {(user + sys_s) / writes * 1e6:.2f} CPU-s per million writes")
PY
