#!/usr/bin/env python3
"""Writes the fuzz corpus under fuzz/corpus/{pulse,json,events}/: every example's pipeline in both
forms and its input lines, plus the hostile inputs of "Never silently wrong" (deep `!` chains and
nested brackets, floods of `"`, `=` and `{`, a UTF-8 BOM, a long line standing in for a 100 MB one,
invalid UTF-8, numbers out of range, far-future timestamps, names with newlines, NUL and U+2028,
URL templates with `..`). Run it from the repository root after changing examples/; entries that
the fuzz tests saved after a failure (`found-*`) are kept. No file is larger than 64 KiB.
"""

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
MAX_BYTES = 64 * 1024
# The stand-in for a 100 MB line: long enough to cross every "line too long" threshold of the
# renderer and the LSP, small enough for a checked-in file.
LONG = 60_000


def write(kind, name, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    assert len(data) <= MAX_BYTES, f"{kind}/{name} is {len(data)} bytes"
    path = CORPUS / kind / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def clear(kind):
    folder = CORPUS / kind
    if folder.exists():
        for path in folder.iterdir():
            if not path.name.startswith("found-"):
                path.unlink()


PULSE_BASE = """pipeline demo
version "1.0"
event { userId: string?, event_name: string, ts: timestamp, amount: float }

source: file-source("events.jsonl") { eventTime: ts }
logins: filter(CONDITION)
wait: delay(5m) by userId
push: api-sink("https://notify.service/send/{{ userId }}") { method: "POST" }
source -> logins -> wait -> push
"""

JSON_BASE = {
    "name": "demo",
    "version": "1.0",
    "nodes": [
        {"id": "source", "type": "file-source", "config": {"path": "events.jsonl", "eventTime": "ts"}},
        {"id": "logins", "type": "filter", "config": {"where": {"field": "event_name", "equals": "login_success"}}},
        {"id": "wait", "type": "delay", "config": {"duration": "5m", "keyBy": "userId"}},
        {"id": "push", "type": "api-sink", "config": {"url": "https://notify.service/send/{{ userId }}"}},
    ],
    "edges": ["source -> logins", "logins -> wait", "wait -> push"],
}


def pulse_with(condition="event_name == \"login_success\"", **replace):
    text = PULSE_BASE.replace("CONDITION", condition)
    for old, new in replace.items():
        text = text.replace(old.replace("_", " "), new)
    return text


def json_with(edit):
    document = json.loads(json.dumps(JSON_BASE))
    edit(document)
    return json.dumps(document, indent=2, ensure_ascii=False)


def pulse_corpus():
    clear("pulse")
    for path in sorted(ROOT.glob("examples/**/pipeline.pulse")):
        write("pulse", f"example-{path.parent.name}.pulse", path.read_bytes())
    write("pulse", "base.pulse", pulse_with())
    write("pulse", "deep-not-chain.pulse", pulse_with("!" * 5000 + "(event_name == \"x\")"))
    write("pulse", "nested-parens.pulse", pulse_with("(" * 5000 + "userId != null" + ")" * 5000))
    write("pulse", "nested-parens-unclosed.pulse", pulse_with("(" * 5000))
    write("pulse", "nested-arrays.pulse", pulse_with("userId in " + "[" * 3000 + "]" * 3000))
    write("pulse", "nested-calls.pulse", pulse_with("lower(" * 2000 + "userId" + ")" * 2000 + " == \"a\""))
    write("pulse", "quote-flood.pulse", pulse_with("\"" * 20000))
    write("pulse", "equals-flood.pulse", pulse_with("=" * 20000))
    write("pulse", "brace-flood.pulse", "{" * 20000)
    write("pulse", "brace-flood-in-block.pulse", pulse_with().replace("{ method", "{" * 20000 + " method"))
    write("pulse", "bom.pulse", "\ufeff" + pulse_with())
    write("pulse", "bom-twice.pulse", "\ufeff\ufeff" + pulse_with())
    write("pulse", "long-line.pulse", pulse_with("event_name == \"" + "x" * LONG + "\""))
    write("pulse", "long-line-error.pulse", pulse_with("event_name == " + "x " * (LONG // 2)))
    write("pulse", "invalid-utf8.pulse", pulse_with().encode("utf-8").replace(b"demo", b"de\xff\xfemo"))
    write("pulse", "invalid-utf8-truncated.pulse", pulse_with().encode("utf-8") + b"\xe2\x80")
    write("pulse", "number-out-of-range.pulse", pulse_with("amount > 1" + "0" * 400, **{"5m": "99999999999999999999999m"}))
    write("pulse", "number-huge-float.pulse", pulse_with("amount > 1e999 || amount < -1.7976931348623157e309"))
    write("pulse", "duration-overflow.pulse", pulse_with(**{"5m": "9223372036854775807d"}))
    write("pulse", "far-future.pulse", pulse_with("ts > \"9999-12-31T23:59:59Z\"", **{"5m": "3000000d"}))
    write("pulse", "pipeline-name-newline.pulse", pulse_with().replace("pipeline demo", "pipeline \"de\nmo\""))
    write("pulse", "pipeline-name-nul.pulse", pulse_with().replace("pipeline demo", "pipeline de\0mo"))
    write("pulse", "pipeline-name-u2028.pulse", pulse_with().replace("pipeline demo", "pipeline de\u2028mo"))
    write("pulse", "node-id-u2028.pulse", pulse_with().replace("logins", "log\u2028ins"))
    write("pulse", "node-id-nul.pulse", pulse_with().replace("logins", "log\0ins"))
    write("pulse", "topic-newline.pulse", pulse_with().replace("file-source(\"events.jsonl\")", "kafka-source(\"ev\\nents\") { brokers: \"b:9092\" }"))
    write("pulse", "topic-u2028.pulse", pulse_with().replace("file-source(\"events.jsonl\")", "kafka-source(\"ev\u2028ents\") { brokers: \"b:9092\" }"))
    write("pulse", "topic-dotdot.pulse", pulse_with().replace("file-source(\"events.jsonl\")", "kafka-source(\"..\") { brokers: \"b:9092\" }"))
    write("pulse", "version-newline.pulse", pulse_with().replace("version \"1.0\"", "version \"1.0\\n\\u0000\\u2028\""))
    write("pulse", "version-raw-newline.pulse", pulse_with().replace("version \"1.0\"", "version \"1.0\n2.0\""))
    write("pulse", "url-dotdot.pulse", pulse_with().replace("send/{{ userId }}", "../../admin/{{ userId }}/.."))
    write("pulse", "url-template-dotdot.pulse", pulse_with().replace("{{ userId }}", "{{ .. }}/{{ ../userId }}"))
    write("pulse", "empty.pulse", "")
    write("pulse", "only-nul.pulse", "\0" * 64)


def json_corpus():
    clear("json")
    for path in sorted(ROOT.glob("examples/**/*.json")):
        write("json", f"example-{path.parent.name}-{path.name}", path.read_bytes())
    write("json", "base.json", json_with(lambda d: None))

    def nested_where(depth):
        # Built as text: Python's own encoder would overflow its recursion limit.
        where = "{\"not\": " * depth + "{\"field\": \"userId\", \"isNotNull\": true}" + "}" * depth
        base = json_with(lambda document: document["nodes"][1]["config"].update(where="WHERE"))
        return base.replace("\"WHERE\"", where)

    write("json", "deep-not-chain.json", nested_where(1500))
    write("json", "nested-arrays.json", json.dumps(JSON_BASE)[:-1] + ", \"x\": " + "[" * 5000 + "]" * 5000 + "}")
    write("json", "nested-arrays-unclosed.json", "[" * 20000)
    write("json", "nested-objects-unclosed.json", "{\"a\":" * 5000)
    write("json", "quote-flood.json", "\"" * 20000)
    write("json", "equals-flood.json", "{\"name\": " + "=" * 20000 + "}")
    write("json", "brace-flood.json", "{" * 20000)
    write("json", "bom.json", "\ufeff" + json_with(lambda d: None))
    write("json", "long-line.json", json.dumps(JSON_BASE)[:-1] + ", \"description\": \"" + "x" * LONG + "\"}")
    write("json", "long-line-error.json", json.dumps(JSON_BASE)[:-1] + ", \"description\": " + "x" * LONG + "}")
    write("json", "invalid-utf8.json", json_with(lambda d: None).encode("utf-8").replace(b"demo", b"de\xff\xfemo"))
    write("json", "lone-surrogate-escape.json", json_with(lambda d: None).replace("\"demo\"", "\"de\\udc00mo\""))

    def set_path(path, value):
        def edit(document):
            target = document
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        return edit

    duration = ["nodes", 2, "config", "duration"]
    write("json", "number-out-of-range.json", json_with(set_path(duration, 0)).replace("\"duration\": 0", "\"duration\": 1" + "0" * 400))
    write("json", "number-huge-float.json", json_with(set_path(duration, 0)).replace("\"duration\": 0", "\"duration\": 1e999"))
    write("json", "number-negative.json", json_with(set_path(duration, -9223372036854775808)))
    write("json", "number-i64-max.json", json_with(set_path(duration, 9223372036854775807)))
    write("json", "duration-overflow.json", json_with(set_path(duration, "9223372036854775807d")))
    write("json", "far-future.json", json_with(set_path(["nodes", 1, "config", "where"], {"field": "ts", "greaterThan": "9999-12-31T23:59:59Z"})))
    write("json", "pipeline-name-newline.json", json_with(set_path(["name"], "de\nmo")))
    write("json", "pipeline-name-nul.json", json_with(set_path(["name"], "de\0mo")))
    write("json", "pipeline-name-u2028.json", json_with(set_path(["name"], "de\u2028mo")))

    def rename(old, new):
        def edit(document):
            for node in document["nodes"]:
                if node["id"] == old:
                    node["id"] = new
            document["edges"] = [edge.replace(old, new) for edge in document["edges"]]
        return edit

    write("json", "node-id-newline.json", json_with(rename("logins", "log\nins")))
    write("json", "node-id-nul.json", json_with(rename("logins", "log\0ins")))
    write("json", "node-id-u2028.json", json_with(rename("logins", "log\u2028ins")))

    def kafka(topic):
        def edit(document):
            document["nodes"][0] = {"id": "source", "type": "kafka-source", "config": {"topic": topic, "brokers": "b:9092"}}
        return edit

    write("json", "topic-newline.json", json_with(kafka("ev\nents")))
    write("json", "topic-nul.json", json_with(kafka("ev\0ents")))
    write("json", "topic-u2028.json", json_with(kafka("ev\u2028ents")))
    write("json", "topic-dotdot.json", json_with(kafka("..")))
    write("json", "version-newline.json", json_with(set_path(["version"], "1.0\n\0\u2028")))
    write("json", "version-number.json", json_with(set_path(["version"], 1e308)))
    url = ["nodes", 3, "config", "url"]
    write("json", "url-dotdot.json", json_with(set_path(url, "https://notify.service/../../admin/{{ userId }}/..")))
    write("json", "url-template-dotdot.json", json_with(set_path(url, "https://notify.service/{{ .. }}/{{ ../userId }}")))
    write("json", "empty.json", "")
    write("json", "only-nul.json", "\0" * 64)


def events_corpus():
    clear("events")
    for path in sorted(ROOT.glob("examples/**/input.jsonl")):
        lines = path.read_bytes().split(b"\n")
        for index, line in enumerate(lines):
            if line.strip():
                write("events", f"example-{path.parent.name}-{index + 1:03}.json", line)
    base = {"event_name": "login_success", "userId": "u1", "ts": 1700000000000, "amount": 2.5,
            "props": {"device": "tv", "tags": ["a", "b"]}}

    def event(**fields):
        merged = dict(base)
        merged.update(fields)
        return json.dumps(merged, ensure_ascii=False)

    write("events", "base.json", event())
    write("events", "deep-arrays.json", event(props=None)[:-1] + ", \"x\": " + "[" * 5000 + "]" * 5000 + "}")
    write("events", "deep-objects.json", event()[:-1] + ", \"x\": " + "{\"a\":" * 3000 + "1" + "}" * 3000 + "}")
    write("events", "deep-unclosed.json", "{\"x\":" + "[" * 20000)
    write("events", "quote-flood.json", "\"" * 20000)
    write("events", "equals-flood.json", "{\"userId\": " + "=" * 20000 + "}")
    write("events", "brace-flood.json", "{" * 20000)
    write("events", "bom.json", "\ufeff" + event())
    write("events", "long-line.json", event(userId="x" * LONG))
    write("events", "long-line-bad.json", event()[:-1] + ", \"pad\": " + "x" * LONG + "}")
    write("events", "invalid-utf8.json", event().encode("utf-8").replace(b"u1", b"u\xff\xfe1"))
    write("events", "invalid-utf8-truncated.json", event().encode("utf-8")[:-1] + b"\xe2\x80")
    write("events", "lone-surrogate.json", event().replace("\"u1\"", "\"\\udc00\\ud800\""))
    write("events", "number-big-int.json", event(ts=None).replace("null", "1" + "0" * 400))
    write("events", "number-1e999.json", event(amount=None).replace("\"amount\": null", "\"amount\": 1e999"))
    write("events", "number-neg-1e999.json", event(amount=None).replace("\"amount\": null", "\"amount\": -1e999"))
    write("events", "number-nan.json", event(amount=None).replace("\"amount\": null", "\"amount\": NaN"))
    write("events", "number-i64-min.json", event(ts=-9223372036854775808))
    write("events", "number-i64-max.json", event(ts=9223372036854775807))
    write("events", "number-u64-max.json", event(ts=18446744073709551615))
    write("events", "number-float-ts.json", event(ts=1.7976931348623157e308))
    write("events", "number-neg-float-ts.json", event(ts=-9.3e18))
    write("events", "far-future.json", event(ts="9999-12-31T23:59:59.999Z"))
    write("events", "far-future-offset.json", event(ts="9999-12-31T23:59:59-23:59"))
    write("events", "far-past.json", event(ts="0000-01-01T00:00:00+23:59"))
    write("events", "ts-leap-second.json", event(ts="2024-06-30T23:59:60Z"))
    write("events", "ts-long-fraction.json", event(ts="2024-01-01T00:00:00." + "9" * 5000 + "Z"))
    write("events", "ts-multibyte.json", event(ts="2024-01-01T00:00:0é\u2028Z"))
    write("events", "ts-unicode-digits.json", event(ts="２０２４-01-01T00:00:00Z"))
    write("events", "name-newline.json", event(userId="u\n1", event_name="login\0success\u2028"))
    write("events", "duplicate-keys.json", "{\"userId\": \"a\", \"userId\": \"b\", \"ts\": 1, \"ts\": \"x\"}")
    write("events", "escaped-keys.json", "{\"us\\u0065rId\": \"a\", \"t\\u0073\": 5, \"\\u0000\": 1}")
    write("events", "nested-not-object.json", event(props="not an object"))
    write("events", "trailing.json", event() + " trailing")
    write("events", "array.json", "[1, 2, {\"userId\": \"u1\"}]")
    write("events", "scalar.json", "42")
    write("events", "empty.json", "")
    write("events", "blank.json", " \t\r")
    write("events", "only-nul.json", "\0" * 64)
    write("events", "url-dotdot.json", event(userId="../../admin/.."))


if __name__ == "__main__":
    pulse_corpus()
    json_corpus()
    events_corpus()
    for path in sorted(CORPUS.rglob("*")):
        if path.is_file():
            assert path.stat().st_size <= MAX_BYTES, path
    print(f"wrote {sum(1 for p in CORPUS.rglob('*') if p.is_file())} corpus files under {CORPUS}")
