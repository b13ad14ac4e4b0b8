#!/usr/bin/env python3
"""Figures of bench/kafka.sh from the files of one run directory.

usage: kafka_report.py RUN windows TOPIC            CreateTime windows (ms) of the runs writing TOPIC
       kafka_report.py RUN one-run SAMPLES TOPIC STDOUT N   one line after a throughput run
       kafka_report.py RUN one-latency BASE          one line after a latency run
       kafka_report.py RUN one-recovery NAME         one line after a recovery run
       kafka_report.py RUN recovered NAME            exit 0 when the restarted run produced output
       kafka_report.py RUN summary N                 the Markdown tables

Throughput runs are timed from process start to the Kafka CreateTime of their last output record
(when the client produced it); CPU is read from the 20 ms samples at that moment. The
consume-only floor produces nothing: its first and last records' receive times stand in.
"""
import json
import os
import re
import statistics
import sys

RUN = sys.argv[1]


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def load_json(path):
    with open(path) as f:
        text = f.read().strip()
    return json.loads(text.splitlines()[-1]) if text else {}


class Samples:
    """`start_us T`, `T_us cpu rss_mb [watch_cpu...]` lines, `exit_us T code C`."""

    def __init__(self, path):
        self.rows, self.start, self.exit, self.code = [], None, None, None
        with open(path) as f:
            for line in f:
                parts = line.split()
                if parts[0] == "start_us":
                    self.start = int(parts[1])
                elif parts[0] == "exit_us":
                    self.exit, self.code = int(parts[1]), int(parts[3])
                else:
                    self.rows.append([int(parts[0])] + [float(x) for x in parts[1:]])

    def at(self, t_us, column=1):
        """The value of COLUMN in the first sample taken at or after t_us (CPU only grows)."""
        for row in self.rows:
            if row[0] >= t_us and len(row) > column:
                return row[column]
        return self.rows[-1][column] if self.rows and len(self.rows[-1]) > column else float("nan")

    def peak_rss(self):
        return max((row[2] for row in self.rows), default=float("nan"))


def pulse_stats(err_path):
    """Checkpoint figures and counts from a pipeline binary's closing lines on stderr."""
    out = {}
    if not os.path.exists(err_path):
        return out
    text = open(err_path, errors="replace").read()
    m = re.search(r"(\d+) checkpoints, ([\d.]+) ms average, ([\d.]+) ms max", text)
    if m:
        out.update(checkpoints=int(m.group(1)), commit_avg_ms=float(m.group(2)), commit_max_ms=float(m.group(3)))
    # With tasks the commits run on a thread: the figures above are the steps' stalls.
    m = re.search(r"(\d+) commits in flight, ([\d.]+) ms average, ([\d.]+) ms max", text)
    if m:
        out.update(inflight_avg_ms=float(m.group(2)), inflight_max_ms=float(m.group(3)))
    m = re.search(r"(\d+) records read, (\d+) written .*?, (\d+) dead letters", text)
    if m:
        out.update(read=int(m.group(1)), written=int(m.group(2)), dead_letters=int(m.group(3)))
    m = re.search(r"restored in ([\d.]+) ms", text)
    if m:
        out.update(restore_ms=float(m.group(1)))
    # With tasks: the last assignment's restore from the changelog (the takeover's or restart's).
    tasks = re.findall(r"restored \d+ state entries and \d+ timers from `[^`]*` in (\d+) ms", text)
    if tasks:
        out.update(restore_ms=float(tasks[-1]))
    return out


def commit_stats(base):
    """Average and max commit (transaction or checkpoint) time of a latency run's system."""
    stats = pulse_stats(base + ".err")
    if "commit_avg_ms" not in stats and os.path.exists(base + ".out"):
        data = load_json(base + ".out")
        stats = {k: data[k] for k in ("commit_avg_ms", "commit_max_ms") if k in data}
    return stats


def throughput_runs():
    runs = load_jsonl(os.path.join(RUN, "throughput.jsonl"))
    by_topic = {}
    for run in runs:
        if run["topic"]:
            by_topic.setdefault(run["topic"], []).append(run)
    for topic, topic_runs in by_topic.items():
        path = os.path.join(RUN, f"consume-{topic}.json")
        windows = load_json(path).get("windows", []) if os.path.exists(path) else []
        for run, window in zip(topic_runs, windows):
            run["window"] = window
    return runs


def measure(run, n):
    s = Samples(run["samples"])
    out = {"system": run["system"], "rep": run["rep"], "exit_code": s.code}
    out["dead_letters"] = pulse_stats(run["stdout"][: -len(".out")] + ".err").get("dead_letters", 0)
    if run["system"] == "consume-only":
        stdout = load_json(run["stdout"])
        first, last, records = stdout["first_recv_us"], stdout["last_recv_us"], stdout["records"]
    elif "window" in run:
        w = run["window"]
        first, last, records = w["first_create_ms"] * 1000, w["last_create_ms"] * 1000, w["records"]
    else:
        return None
    cpu_first, cpu_last = s.at(first), s.at(last)
    broker_first, broker_last = s.at(first, 3), s.at(last, 3)
    out.update(
        records=records,
        startup_s=(first - s.start) / 1e6,
        active_s=(last - first) / 1e6,
        to_last_s=(last - s.start) / 1e6,
        tail_s=(s.exit - last) / 1e6,
        rate_active=n / max((last - first) / 1e6, 1e-9),
        rate_total=n / max((last - s.start) / 1e6, 1e-9),
        cpu_to_last=cpu_last,
        cpu_active=cpu_last - cpu_first,
        cpu_exit=s.rows[-1][1] if s.rows else float("nan"),
        broker_cpu_active=broker_last - broker_first,
        peak_rss_mb=s.peak_rss(),
    )
    return out


def cmd_windows(topic):
    windows = []
    for run in load_jsonl(os.path.join(RUN, "throughput.jsonl")):
        if run["topic"] == topic:
            s = Samples(run["samples"])
            windows.append(f"{s.start // 1000}:{s.exit // 1000 + 1}")
    print(",".join(windows))


def cmd_one_run(samples, topic, stdout, n):
    s = Samples(samples)
    line = f"exit {(s.exit - s.start) / 1e6:.2f} s after start, CPU {s.rows[-1][1]:.2f} s, peak RSS {s.peak_rss():.0f} MB"
    if not topic:
        data = load_json(stdout)
        line += f"; {data['records']} records read, last {(data['last_recv_us'] - s.start) / 1e6:.2f} s after start"
    print(line)


def latency_row(entry):
    base = entry["base"]
    lat = load_json(base + ".json")
    prod = load_json(base + ".produce.json")
    row = dict(entry, **{f"lat_{k}": v for k, v in lat.items()})
    row["produced_rate"] = prod.get("rate")
    row["max_behind_ms"] = prod.get("max_behind_ms")
    row["sent"] = prod.get("sent")
    if os.path.exists(base + ".samples"):
        s = Samples(base + ".samples")
        t0 = entry["from_us"]
        t1 = lat_end_us(base) or (t0 + 10_000_000)
        span = (t1 - t0) / 1e6
        row["cpu_pct"] = 100 * (s.at(t1) - s.at(t0)) / span if span > 0 else float("nan")
        row["broker_cpu_pct"] = 100 * (s.at(t1, 3) - s.at(t0, 3)) / span if span > 0 else float("nan")
        row["peak_rss_mb"] = s.peak_rss()
    row.update(commit_stats(base))
    return row


def lat_end_us(base):
    """The send time of the last measured record (the end of the measured window)."""
    path = base + ".csv"
    if not os.path.exists(path):
        return None
    last = None
    with open(path) as f:
        next(f)
        for line in f:
            sent = int(line.split(",")[1])
            last = sent if last is None or sent > last else last
    return last


def cmd_one_latency(base):
    entry = next(e for e in load_jsonl(os.path.join(RUN, "latency.jsonl")) if e["base"] == base)
    r = latency_row(entry)
    line = (
        f"p50 {r['lat_p50_ms']:.1f} ms, p99 {r['lat_p99_ms']:.1f} ms, max {r['lat_max_ms']:.1f} ms over "
        f"{r['lat_measured']} records; produced {r['produced_rate']:.0f}/s (max {r['max_behind_ms']:.0f} ms behind), "
        f"measured output rate {r['lat_measured_rate']:.0f}/s"
    )
    if "cpu_pct" in r:
        line += f"; CPU {r['cpu_pct']:.0f} % of a core (broker {r['broker_cpu_pct']:.0f} %)"
    print(line)


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[round(p / 100 * (len(values) - 1))]


def null_users(events, count):
    """How many of the first COUNT lines of EVENTS (cycled) have no userId."""
    with open(events, "rb") as f:
        flags = []
        for line in f:
            flags.append(b'"userId":null' in line)
            if len(flags) >= count:
                break
    full, rest = divmod(count, len(flags))
    return full * sum(flags) + sum(flags[:rest])


def recovery(name):
    entry = next(e for e in load_jsonl(os.path.join(RUN, "recovery.jsonl")) if e["name"] == name)
    base = entry["base"]
    rows = []
    with open(base + ".csv") as f:
        next(f)
        for line in f:
            recv, sent, created, dup = line.strip().split(",")
            rows.append((int(recv), int(sent), int(created), dup == "1"))
    kill, restart, start = entry["kill_us"], entry["restart_us"], entry["produce_start_us"]
    pre = [recv - sent for recv, sent, _, dup in rows if not dup and start + 3e6 <= sent <= kill - 1e6]
    pre_p50, pre_p99 = percentile(pre, 50) / 1e3, percentile(pre, 99) / 1e3
    new = [r for r in rows if r[2] * 1000 >= restart]
    out = dict(entry, pre_p50_ms=pre_p50, pre_p99_ms=pre_p99, recovered=bool(new))
    if new:
        out["first_produced_s"] = (min(r[2] for r in new) * 1000 - restart) / 1e6
        out["first_visible_s"] = (min(r[0] for r in new) - restart) / 1e6
        threshold = 2 * pre_p99 * 1e3
        late = [recv for recv, sent, _, dup in rows if recv > kill and recv - sent > threshold]
        out["caught_up_s"] = (max(late) - restart) / 1e6 if late else 0.0
        out["max_latency_after_kill_ms"] = max((recv - sent for recv, sent, _, _ in rows if recv > kill), default=0) / 1e3
        out["threshold_ms"] = threshold / 1e3
        samples = base + ".restarted.samples"
        if os.path.exists(samples):
            s = Samples(samples)
            end = restart + max(out["caught_up_s"], out["first_visible_s"]) * 1e6
            span = (end - restart) / 1e6
            out["restarted_cpu_pct"] = 100 * (s.at(end) - s.at(restart)) / span if span > 0 else float("nan")
            out["broker_cpu_pct"] = 100 * (s.at(end, 3) - s.at(restart, 3)) / span if span > 0 else float("nan")
    probe = load_json(base + ".probe-produce.json").get("sent", 0)
    sent = load_json(base + ".produce.json").get("sent", 0)
    expected = (probe - null_users(entry["events"], probe)) + (sent - null_users(entry["events"], sent))
    out["expected"] = expected
    out.update({f"pipeline_{k}": v for k, v in pulse_stats(base + ".pipeline.log").items()})
    out["received"] = len(rows)
    out["duplicates"] = sum(1 for r in rows if r[3])
    out["unique"] = len(rows) - out["duplicates"]
    return out


def cmd_one_recovery(name):
    r = recovery(name)
    if not r["recovered"]:
        print(f"NO output from the restarted run (steady state before the kill: p50 {r['pre_p50_ms']:.0f} ms, "
              f"p99 {r['pre_p99_ms']:.0f} ms); {r['unique']} of {r['expected']} records")
        return
    if r["group"] == "takeover":
        print(
            f"latency back under {r['threshold_ms']:.0f} ms (2x the p99 before the kill) {r['caught_up_s']:.2f} s after it, "
            f"max {r['max_latency_after_kill_ms']:.0f} ms; {r['unique']} distinct of {r['expected']} expected records, "
            f"{r['duplicates']} duplicates visible, restore {fmt(r.get('pipeline_restore_ms'), 0)} ms"
        )
        return
    print(
        f"first record produced {r['first_produced_s']:.2f} s and visible {r['first_visible_s']:.2f} s after the restart, "
        f"latency back under {r['threshold_ms']:.0f} ms (2x the p99 before the kill) {r['caught_up_s']:.2f} s after it; "
        f"{r['unique']} distinct of {r['expected']} expected records, {r['duplicates']} duplicates visible, "
        f"restore {fmt(r.get('pipeline_restore_ms'), 0)} ms; until caught up the restarted pipeline used "
        f"{fmt(r.get('restarted_cpu_pct'), 0)} % of a core, the broker {fmt(r.get('broker_cpu_pct'), 0)} %"
    )


def fmt(value, digits=2):
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def cmd_summary(n):
    out = []
    runs = [m for m in (measure(run, n) for run in throughput_runs()) if m]
    if runs:
        out.append(f"### Throughput, {n:,} events preloaded into a 4-partition topic (median of {max(r['rep'] for r in runs)} runs)\n")
        out.append("| system | output records | start → first output s | first → last output s | events/s (first → last) "
                   "| CPU s to last output | CPU-s / M events | broker CPU s (first → last) | peak RSS MB | exit after last output s "
                   "| dead letters |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        medians = {}
        for system in dict.fromkeys(r["system"] for r in runs):
            rs = [r for r in runs if r["system"] == system]
            med = {k: statistics.median(r[k] for r in rs) for k in rs[0] if isinstance(rs[0][k], (int, float)) and k != "rep"}
            medians[system] = med
            out.append(
                f"| {system} | {fmt(int(med['records']))} | {fmt(med['startup_s'])} | {fmt(med['active_s'])} "
                f"| {fmt(med['rate_active'], 0)} | {fmt(med['cpu_to_last'])} | {fmt(med['cpu_to_last'] / n * 1e6)} "
                f"| {fmt(med['broker_cpu_active'])} | {fmt(med['peak_rss_mb'], 0)} | {fmt(med['tail_s'])} "
                f"| {fmt(int(med['dead_letters']))} |"
            )
        out.append("")
        for a, b in [("pulse-w1", "passthrough-eos"), ("pulse-w1", "hand-w1-eos"), ("pulse-w2", "passthrough-eos"),
                     ("pulse-w2", "hand-w1-eos")]:
            if a in medians and b in medians:
                ma, mb = medians[a], medians[b]
                out.append(f"- {a} / {b}: CPU to last output {ma['cpu_to_last'] / mb['cpu_to_last']:.2f}x, "
                           f"events/s (first → last output) {ma['rate_active'] / mb['rate_active']:.2f}x")
        out.append("")
        out.append("Per run (events/s first → last output, CPU s to last output, output records, dead letters):")
        for system in medians:
            out.append("- " + system + ": " + "; ".join(
                f"{r['rate_active']:,.0f}/s, {r['cpu_to_last']:.2f} s, {r['records']:,} out, {r['dead_letters']} dl"
                for r in runs if r["system"] == system))
        check = os.path.join(RUN, "check.txt")
        if os.path.exists(check):
            out.append("\nChecks (check.py on the read_committed output of the first run):\n```")
            out.append(open(check).read().strip())
            out.append("```")
        out.append("")
    lat = [latency_row(e) for e in load_jsonl(os.path.join(RUN, "latency.jsonl"))]
    if lat:
        out.append("### End-to-end latency (producer send → read_committed consumer poll)\n")
        out.append("| system | commit interval ms | target rate /s | produced /s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms "
                   "| records measured | CPU % of a core | broker CPU % | commit (stall) avg / max ms "
                   "| commit in flight avg / max ms |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in lat:
            out.append(
                f"| {r['system'].split('@')[0]} | {r.get('interval_ms', '–') if r['system'] != 'direct' else '–'} "
                f"| {r['rate']:,} | {fmt(r['produced_rate'], 0)} | {fmt(r['lat_p50_ms'], 1)} | {fmt(r['lat_p90_ms'], 1)} "
                f"| {fmt(r['lat_p99_ms'], 1)} | {fmt(r['lat_p999_ms'], 1)} | {fmt(r['lat_max_ms'], 1)} | {fmt(r['lat_measured'])} "
                f"| {fmt(r.get('cpu_pct'), 0)} | {fmt(r.get('broker_cpu_pct'), 0)} "
                f"| {fmt(r.get('commit_avg_ms'), 0)} / {fmt(r.get('commit_max_ms'), 0)} "
                f"| {fmt(r.get('inflight_avg_ms'), 0)} / {fmt(r.get('inflight_max_ms'), 0)} |"
            )
        out.append("")
    recs = load_jsonl(os.path.join(RUN, "recovery.jsonl"))
    if recs:
        out.append("### Recovery after SIGKILL (checkpoint every 1 s, RocksDB state, exactly-once sink)\n")
        out.append("| restart in | p50 / p99 before the kill ms | restore ms | first record produced after restart s | "
                   "first visible s | latency back to normal s | max latency ms | distinct / expected records | "
                   "duplicates visible | dead letters | CPU % of a core until caught up: pipeline / broker |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for e in recs:
            r = recovery(e["name"])
            if r["recovered"] and e["group"] == "takeover":
                # The survivor produced throughout: only the stall of the dead one's partitions shows.
                out.append(
                    f"| takeover by the other instance, run {e['name'].rsplit('-', 1)[-1]} | {r['pre_p50_ms']:.0f} / {r['pre_p99_ms']:.0f} "
                    f"| {fmt(r.get('pipeline_restore_ms'), 0)} | – | – | {r['caught_up_s']:.2f} "
                    f"| {r['max_latency_after_kill_ms']:.0f} | {r['unique']:,} / {r['expected']:,} | {r['duplicates']:,} "
                    f"| {fmt(r.get('pipeline_dead_letters'))} "
                    f"| {fmt(r.get('restarted_cpu_pct'), 0)} / {fmt(r.get('broker_cpu_pct'), 0)} |"
                )
            elif r["recovered"]:
                out.append(
                    f"| {e['group']} group, run {e['name'].rsplit('-', 1)[-1]} | {r['pre_p50_ms']:.0f} / {r['pre_p99_ms']:.0f} | {fmt(r.get('pipeline_restore_ms'), 0)} "
                    f"| {r['first_produced_s']:.2f} | {r['first_visible_s']:.2f} | {r['caught_up_s']:.2f} "
                    f"| {r['max_latency_after_kill_ms']:.0f} | {r['unique']:,} / {r['expected']:,} | {r['duplicates']:,} "
                    f"| {fmt(r.get('pipeline_dead_letters'))} "
                    f"| {fmt(r.get('restarted_cpu_pct'), 0)} / {fmt(r.get('broker_cpu_pct'), 0)} |"
                )
            else:
                out.append(f"| {e['group']} group, run {e['name'].rsplit('-', 1)[-1]} | {r['pre_p50_ms']:.0f} / {r['pre_p99_ms']:.0f} "
                           f"| {fmt(r.get('pipeline_restore_ms'), 0)} | never | – | – | – "
                           f"| {r['unique']:,} / {r['expected']:,} | {r['duplicates']:,} | {fmt(r.get('pipeline_dead_letters'))} | – |")
        out.append("")
    print("\n".join(out))


def main():
    command = sys.argv[2]
    if command == "windows":
        cmd_windows(sys.argv[3])
    elif command == "one-run":
        cmd_one_run(sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    elif command == "one-latency":
        cmd_one_latency(sys.argv[3])
    elif command == "one-recovery":
        cmd_one_recovery(sys.argv[3])
    elif command == "recovered":
        sys.exit(0 if recovery(sys.argv[3])["recovered"] else 1)
    elif command == "summary":
        cmd_summary(int(sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
