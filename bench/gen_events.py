#!/usr/bin/env python3
"""Deterministic JSON-lines events for Pulse's benchmarks, when the peer scripts of
../shared/bench-peers (whose generator the published figures used) are not there.

usage: bench/gen_events.py N OUT [--days D] [--seed S]

One event per line, in the shape the bench pipelines read:
  {"event_name":"video_start","userId":"u4711","ts":1700000000000,
   "props":{"show_id":"s12","amount":3.5,"device":"ios","country":"US",
            "session_id":"9f...","app_version":"1.2.3"}}
- event names from a fixed skewed mix (home_seen most, a few purchases and errors);
- users drawn by a power law over 100,000 ids (a few very active users, a long tail),
  with 0.5 % of events without a user (`userId: null`);
- event time rising evenly over D days (default 10) from 1,700,000,000,000 ms, one event in ten
  up to 30 s late, so sources see bounded out-of-orderness;
- the same N, D and seed give the same file, byte for byte.
"""
import argparse
import json
import random

START_MS = 1_700_000_000_000
DAY_MS = 86_400_000
USERS = 100_000
LATE_SHARE = 0.1
MAX_LATENESS_MS = 30_000
NULL_USER_SHARE = 0.005

# (event name, relative frequency)
MIX = [
    ("home_seen", 180), ("video_start", 140), ("video_progress", 120), ("video_stop", 80),
    ("login_success", 60), ("search", 60), ("page_view", 60), ("add_to_cart", 40),
    ("chat_sent", 40), ("like", 40), ("ad_impression", 30), ("share", 20), ("checkout", 20),
    ("login_failure", 20), ("logout", 20), ("profile_update", 20), ("rating_given", 20),
    ("ad_click", 10), ("subscription_start", 10), ("error", 10),
]
DEVICES = ("ios", "android", "web", "tv", "console")
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN", "JP", "CA", "MX", "ES")


def user(rng: random.Random) -> str:
    # Pareto with shape 1.1, stretched (the most active user has ~0.3 % of the events) and folded
    # onto the id range: low ids are the active users.
    rank = int((rng.paretovariate(1.1) - 1.0) * 400)
    return f"u{rank % USERS}"


def write(n: int, path: str, days: float, seed: int) -> None:
    rng = random.Random(seed)
    names = [name for name, _ in MIX]
    weights = [weight for _, weight in MIX]
    step = days * DAY_MS / n
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as out:
        for index in range(n):
            ts = START_MS + int(index * step)
            if rng.random() < LATE_SHARE:
                ts -= rng.randrange(MAX_LATENESS_MS)
            event = {
                "event_name": rng.choices(names, weights)[0],
                "userId": None if rng.random() < NULL_USER_SHARE else user(rng),
                "ts": ts,
                "props": {
                    "show_id": f"s{rng.randrange(5000)}",
                    "amount": round(rng.uniform(0, 100), 2),
                    "device": rng.choice(DEVICES),
                    "country": rng.choice(COUNTRIES),
                    "session_id": f"{rng.getrandbits(64):016x}",
                    "app_version": f"{rng.randrange(1, 9)}.{rng.randrange(20)}.{rng.randrange(50)}",
                },
            }
            out.write(json.dumps(event, separators=(",", ":")))
            out.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of events")
    parser.add_argument("out", help="output file")
    parser.add_argument("--days", type=float, default=10.0, help="event-time span in days (default 10)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args()
    if args.n <= 0 or args.days <= 0:
        parser.error("N and --days must be positive")
    write(args.n, args.out, args.days, args.seed)


if __name__ == "__main__":
    main()
