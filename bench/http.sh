#!/usr/bin/env bash
# HTTP sink throughput: a pipeline sending one POST per event (bench/http.pulse) to a local
# endpoint (bench/http_server.rs) that answers at once or after LATENCY_MS, against `ab -k -c
# CONCURRENCY` (Apache Bench, keep-alive, the same concurrency as the sink) posting the same
# number of requests to the same server. Prints requests/s and CPU-s per million requests for
# both. With RATE the sink has `rateLimit: RATE` (per second) and ab is left out.
#
# usage: bench/http.sh [N_EVENTS]
# env:   BENCH_WORK (default /var/tmp/pulse-bench), PEERS_DIR, LATENCY_MS (0), CONCURRENCY (4),
#        RATE (none)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/bench-peers}"
# The peers' generator when they are there (the published figures used it), else Pulse's own.
GEN="$PEERS_DIR/gen_events.py"
[ -f "$GEN" ] || GEN="$ROOT/bench/gen_events.py"
WORK="${BENCH_WORK:-/var/tmp/pulse-bench}"
N="${1:-200000}"
PORT=18089
LATENCY_MS="${LATENCY_MS:-0}"
CONCURRENCY="${CONCURRENCY:-4}"
RATE="${RATE:-}"
mkdir -p "$WORK"
EVENTS="$WORK/events-$N.jsonl"
[ -s "$EVENTS" ] || python3 "$GEN" "$N" "$EVENTS"
command -v ab >/dev/null || apt-get install -y -q apache2-utils >/dev/null

rustc -O --edition 2021 "$ROOT/bench/http_server.rs" -o "$WORK/http-server"
cargo build --quiet --release -p pulsec --manifest-path "$ROOT/Cargo.toml"
options="    concurrency: $CONCURRENCY"
[ -n "$RATE" ] && options="$options\n    rateLimit: $RATE"
sed "s/^    retries: 3$/    retries: 3\n$options/" "$ROOT/bench/http.pulse" > "$WORK/http.pulse"
grep -q "concurrency: $CONCURRENCY" "$WORK/http.pulse"
"${CARGO_TARGET_DIR:-$ROOT/target}/release/pulsec" build "$WORK/http.pulse" -o "$WORK/bench-http"

"$WORK/http-server" "$PORT" "$LATENCY_MS" &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/count" >/dev/null && break; sleep 0.1; done

requests=$(grep -c -v '"userId":null' "$EVENTS")
echo "== pulse: $requests POSTs from $N events (concurrency $CONCURRENCY, server latency $LATENCY_MS ms${RATE:+, rateLimit $RATE/s})"
BENCH_API="http://127.0.0.1:$PORT" BENCH_TOKEN=bench-token /usr/bin/time -f "%e %U %S %M" -o "$WORK/http-time.txt" \
    "$WORK/bench-http" run --quiet --input "$EVENTS" --dead-letter "$WORK/http-dead.jsonl"
read -r wall user sys rss < "$WORK/http-time.txt"
answered=$(curl -sf "http://127.0.0.1:$PORT/count")
python3 - "$requests" "$wall" "$user" "$sys" "$rss" <<'PY'
import sys
n, wall, user, sys_s, rss = int(sys.argv[1]), *map(float, sys.argv[2:6])
print(f"pulse: {n / wall:,.0f} requests/s (wall {wall:.2f} s), {(user + sys_s) / n * 1e6:.2f} CPU-s per million requests, peak RSS {rss / 1024:.0f} MB")
PY
echo "server answered: $answered; dead letters: $(wc -l < "$WORK/http-dead.jsonl" 2>/dev/null || echo 0)"

[ -n "$RATE" ] && exit 0
echo "== ab -k -c $CONCURRENCY -n $requests (one fixed body)"
printf '{"userId":"u1","event":"login_success","title":"Hello [[firstName]]"}' > "$WORK/http-body.json"
/usr/bin/time -f "%e %U %S" -o "$WORK/http-ab-time.txt" \
    ab -q -k -c "$CONCURRENCY" -n "$requests" -p "$WORK/http-body.json" -T application/json \
    -H "Authorization: Bearer bench-token" "http://127.0.0.1:$PORT/v1/push/u1" > "$WORK/http-ab.txt"
grep -E "Failed requests|Requests per second" "$WORK/http-ab.txt"
read -r awall auser asys < "$WORK/http-ab-time.txt"
python3 - "$requests" "$awall" "$auser" "$asys" <<'PY'
import sys
n, wall, user, sys_s = int(sys.argv[1]), *map(float, sys.argv[2:5])
print(f"ab: {n / wall:,.0f} requests/s (wall {wall:.2f} s), {(user + sys_s) / n * 1e6:.2f} CPU-s per million requests")
PY
