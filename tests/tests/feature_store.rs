//! The feature-store examples against a real `redis-server`: every `examples/<name>/` with an
//! `expected-redis.json` is built, run over its `input.jsonl` with its redis-sinks writing to a
//! fresh server, and the server's whole content (every key, its type, value and TTL) must equal
//! the file: no missing key, no extra key, equal values, and a TTL within a minute below the
//! configured one (or none when the file says `null`). The dead letters of the run must be those
//! of `expected/_dead_letter.jsonl` (so no template fails to render).
//!
//! `expected-redis.json` maps each key to `{"type", "value", "ttl"}`: `hash` → object of strings,
//! `string` → string, `set` → sorted array, `zset` → array of `[member, score]` pairs in ZRANGE
//! order, `list` → array; `ttl` in seconds or `null`.

mod build;
mod redis_server;

use redis_server::{free_port, query, Server};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A TTL may be this much below the configured one: the time between the write and the check.
const TTL_SLACK_MS: i64 = 60_000;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace exists")
}

/// The example directories holding an `expected-redis.json`, sorted.
fn feature_store_examples() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(workspace().join("examples"))
        .expect("examples/ exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.join("expected-redis.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// The content of one Redis key, in a form that compares exactly.
#[derive(Clone, Debug, PartialEq)]
enum Contents {
    Hash(BTreeMap<String, String>),
    String(String),
    Set(Vec<String>),
    ZSet(Vec<(String, f64)>),
    List(Vec<String>),
}

impl Contents {
    fn to_json(&self) -> Value {
        match self {
            Contents::Hash(fields) => json!({"type": "hash", "value": fields}),
            Contents::String(text) => json!({"type": "string", "value": text}),
            Contents::Set(members) => json!({"type": "set", "value": members}),
            Contents::ZSet(members) => json!({"type": "zset", "value": members}),
            Contents::List(elements) => json!({"type": "list", "value": elements}),
        }
    }
}

/// One key as expected (`ttl_ms`: the configured TTL) or as found (`ttl_ms`: the PTTL left).
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    contents: Contents,
    ttl_ms: Option<i64>,
}

fn strings(value: &Value, what: &str) -> Vec<String> {
    let items = value.as_array().unwrap_or_else(|| panic!("{what}: expected an array, found {value}"));
    items
        .iter()
        .map(|item| item.as_str().unwrap_or_else(|| panic!("{what}: expected strings, found {item}")).to_string())
        .collect()
}

/// Parses `expected-redis.json`, rejecting anything outside its format.
fn parse_expected(path: &Path) -> BTreeMap<String, Entry> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let document: Value =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: invalid JSON: {error}", path.display()));
    let keys = document.as_object().unwrap_or_else(|| panic!("{}: expected an object of keys", path.display()));
    let mut entries = BTreeMap::new();
    for (key, spec) in keys {
        let what = format!("{}: key `{key}`", path.display());
        let spec = spec.as_object().unwrap_or_else(|| panic!("{what}: expected {{\"type\", \"value\", \"ttl\"}}"));
        let names: BTreeSet<&str> = spec.keys().map(String::as_str).collect();
        assert_eq!(names, BTreeSet::from(["type", "value", "ttl"]), "{what}: expected exactly type, value and ttl");
        let value = &spec["value"];
        let contents = match spec["type"].as_str() {
            Some("hash") => {
                let fields = value.as_object().unwrap_or_else(|| panic!("{what}: a hash value is an object"));
                Contents::Hash(
                    fields
                        .iter()
                        .map(|(field, text)| {
                            let text =
                                text.as_str().unwrap_or_else(|| panic!("{what}: field `{field}` is not a string"));
                            (field.clone(), text.to_string())
                        })
                        .collect(),
                )
            }
            Some("string") => {
                Contents::String(value.as_str().unwrap_or_else(|| panic!("{what}: a string value is a string")).into())
            }
            Some("set") => Contents::Set(strings(value, &what)),
            Some("list") => Contents::List(strings(value, &what)),
            Some("zset") => {
                let pairs = value.as_array().unwrap_or_else(|| panic!("{what}: a zset value is an array of pairs"));
                Contents::ZSet(
                    pairs
                        .iter()
                        .map(|pair| match pair.as_array().map(Vec::as_slice) {
                            Some([Value::String(member), score]) if score.is_number() => {
                                (member.clone(), score.as_f64().expect("a number"))
                            }
                            _ => panic!("{what}: expected [member, score], found {pair}"),
                        })
                        .collect(),
                )
            }
            other => panic!("{what}: unknown type {other:?}"),
        };
        let ttl_ms = match &spec["ttl"] {
            Value::Null => None,
            ttl => {
                let seconds = ttl.as_i64().filter(|seconds| *seconds > 0);
                Some(seconds.unwrap_or_else(|| panic!("{what}: ttl is a positive number of seconds or null")) * 1000)
            }
        };
        entries.insert(key.clone(), Entry { contents, ttl_ms });
    }
    entries
}

/// Every key of the server (SCAN), with its type, content and PTTL.
fn read_all(connection: &mut redis::Connection) -> BTreeMap<String, Entry> {
    let mut keys = BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, batch): (String, Vec<String>) = query(connection, &["SCAN", &cursor, "COUNT", "1000"]);
        keys.extend(batch);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    let mut entries = BTreeMap::new();
    for key in keys {
        let kind: String = query(connection, &["TYPE", &key]);
        let contents = match kind.as_str() {
            "hash" => Contents::Hash(query(connection, &["HGETALL", &key])),
            "string" => Contents::String(query(connection, &["GET", &key])),
            "set" => {
                let mut members: Vec<String> = query(connection, &["SMEMBERS", &key]);
                members.sort();
                Contents::Set(members)
            }
            "zset" => Contents::ZSet(query(connection, &["ZRANGE", &key, "0", "-1", "WITHSCORES"])),
            "list" => Contents::List(query(connection, &["LRANGE", &key, "0", "-1"])),
            other => panic!("key `{key}` has type `{other}`, which no redis-sink writes"),
        };
        let pttl: i64 = query(connection, &["PTTL", &key]);
        entries.insert(key, Entry { contents, ttl_ms: (pttl >= 0).then_some(pttl) });
    }
    entries
}

fn describe_ttl(ttl_ms: Option<i64>) -> String {
    match ttl_ms {
        None => "no TTL".to_string(),
        Some(ms) => format!("TTL {} s ({ms} ms)", ms / 1000),
    }
}

/// Whether a TTL found on the server fits the configured one: within `TTL_SLACK_MS` below it.
fn ttl_fits(expected_ms: Option<i64>, found_ms: Option<i64>) -> bool {
    match (expected_ms, found_ms) {
        (None, None) => true,
        (Some(expected), Some(found)) => expected - TTL_SLACK_MS < found && found <= expected,
        _ => false,
    }
}

/// A readable list of the differences between the expected and the actual keys; empty when they
/// agree.
fn diff(expected: &BTreeMap<String, Entry>, actual: &BTreeMap<String, Entry>) -> Vec<String> {
    let pretty = |contents: &Contents| serde_json::to_string_pretty(&contents.to_json()).expect("JSON");
    let indent = |text: String| text.replace('\n', "\n      ");
    let mut problems = Vec::new();
    for (key, want) in expected {
        let Some(found) = actual.get(key) else {
            problems.push(format!("- missing key `{key}`: {}", indent(pretty(&want.contents))));
            continue;
        };
        match (&want.contents, &found.contents) {
            (Contents::Hash(want_fields), Contents::Hash(found_fields)) if want_fields != found_fields => {
                let names: BTreeSet<&String> = want_fields.keys().chain(found_fields.keys()).collect();
                let lines: Vec<String> = names
                    .into_iter()
                    .filter(|name| want_fields.get(*name) != found_fields.get(*name))
                    .map(|name| {
                        let show =
                            |value: Option<&String>| value.map_or("(absent)".to_string(), |text| format!("{text:?}"));
                        format!(
                            "field `{name}`: expected {}, actual {}",
                            show(want_fields.get(name)),
                            show(found_fields.get(name))
                        )
                    })
                    .collect();
                problems.push(format!("~ hash `{key}` differs:\n    {}", lines.join("\n    ")));
            }
            (want_contents, found_contents) if want_contents != found_contents => {
                problems.push(format!(
                    "~ key `{key}` differs:\n    expected {}\n    actual   {}",
                    indent(pretty(want_contents)),
                    indent(pretty(found_contents))
                ));
            }
            _ => {}
        }
        if !ttl_fits(want.ttl_ms, found.ttl_ms) {
            let wanted = match want.ttl_ms {
                None => "no TTL".to_string(),
                Some(ms) => format!("a TTL in ({} s, {} s]", (ms - TTL_SLACK_MS) / 1000, ms / 1000),
            };
            problems.push(format!("~ key `{key}`: expected {wanted}, found {}", describe_ttl(found.ttl_ms)));
        }
    }
    for (key, found) in actual {
        if !expected.contains_key(key) {
            problems.push(format!(
                "+ unexpected key `{key}` ({}): {}",
                describe_ttl(found.ttl_ms),
                indent(pretty(&found.contents))
            ));
        }
    }
    problems
}

/// A dead-letter file as a sorted list of (reason category, event): the rest of a reason is free
/// text (G48, G51).
fn dead_letters(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut letters: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let letter: Value =
                serde_json::from_str(line).unwrap_or_else(|error| panic!("{}: {error}: {line}", path.display()));
            let reason = letter["reason"].as_str().unwrap_or_default();
            let category = match reason.strip_prefix("late at node '") {
                Some(rest) => format!("late at node '{}'", rest.split('\'').next().unwrap_or_default()),
                None => reason.split(':').next().unwrap_or_default().to_string(),
            };
            json!({"reason": category, "event": letter["event"]}).to_string()
        })
        .collect();
    letters.sort();
    letters
}

/// Builds and runs one example against a fresh server; the differences found, if any.
fn check_example(dir: &Path) -> Vec<String> {
    let binary = build::build_example(dir);

    let scratch = tempfile::tempdir().expect("temp dir");
    let server = Server::start(free_port(), scratch.path(), false);
    let mut connection = server.connection().expect("connected");
    assert_eq!(query::<i64>(&mut connection, &["DBSIZE"]), 0, "a fresh server is empty");
    let dead = scratch.path().join("dead.jsonl");
    let output = Command::new(&binary)
        .arg("--input")
        .arg(dir.join("input.jsonl"))
        .args(["--redis-url", &server.url(), "--quiet"])
        .arg("--dead-letter")
        .arg(&dead)
        .output()
        .expect("binary runs");
    assert!(
        output.status.success(),
        "{}: exit {}:\n{}",
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    let mut problems = diff(&parse_expected(&dir.join("expected-redis.json")), &read_all(&mut connection));
    let expected_dead = dead_letters(&dir.join("expected/_dead_letter.jsonl"));
    let actual_dead = dead_letters(&dead);
    if expected_dead != actual_dead {
        problems.push(format!(
            "~ dead letters differ from expected/_dead_letter.jsonl:\n    expected {expected_dead:#?}\n    actual   {actual_dead:#?}"
        ));
    }
    problems
}

#[test]
fn feature_store_examples_write_exactly_their_expected_redis_contents() {
    let examples = feature_store_examples();
    let names: Vec<String> =
        examples.iter().map(|dir| dir.file_name().expect("named").to_string_lossy().into_owned()).collect();
    for name in ["feed-counters", "new-user-tagging", "user-profile"] {
        assert!(names.iter().any(|found| found == name), "examples/{name}/expected-redis.json exists: {names:?}");
    }
    let mut report = String::new();
    for dir in &examples {
        let problems = check_example(dir);
        if !problems.is_empty() {
            report.push_str(&format!(
                "examples/{}: Redis differs from expected-redis.json:\n  {}\n",
                dir.file_name().expect("named").to_string_lossy(),
                problems.join("\n  ")
            ));
        }
    }
    assert!(report.is_empty(), "\n{report}");
}

#[test]
fn the_comparison_reports_missing_extra_and_different_keys_and_ttls() {
    let hash = |pairs: &[(&str, &str)]| {
        Contents::Hash(pairs.iter().map(|(field, value)| (field.to_string(), value.to_string())).collect())
    };
    let entry = |contents: Contents, ttl_ms: Option<i64>| Entry { contents, ttl_ms };
    let expected = BTreeMap::from([
        ("profile:u1".to_string(), entry(hash(&[("last_active", "1")]), Some(3_600_000))),
        ("tag:u1".to_string(), entry(Contents::String("x".into()), None)),
        ("seen".to_string(), entry(Contents::Set(vec!["a".into(), "b".into()]), None)),
        ("board".to_string(), entry(Contents::ZSet(vec![("u1".into(), 3.0)]), None)),
    ]);
    // Equal contents, TTLs just inside the allowed range: no difference.
    let mut actual = expected.clone();
    actual.get_mut("profile:u1").expect("key").ttl_ms = Some(3_600_000 - TTL_SLACK_MS + 1);
    assert_eq!(diff(&expected, &actual), Vec::<String>::new());
    actual.get_mut("profile:u1").expect("key").ttl_ms = Some(3_600_000);
    assert_eq!(diff(&expected, &actual), Vec::<String>::new());

    actual.get_mut("profile:u1").expect("key").contents = hash(&[("last_active", "2"), ("x", "y")]);
    actual.get_mut("tag:u1").expect("key").ttl_ms = Some(1000);
    actual.get_mut("board").expect("key").contents = Contents::ZSet(vec![("u1".into(), 3.5)]);
    actual.remove("seen");
    actual.insert("extra".into(), entry(Contents::List(vec!["e".into()]), None));
    let problems = diff(&expected, &actual);
    assert_eq!(problems.len(), 5, "{problems:#?}");
    let text = problems.join("\n");
    for needle in [
        "~ key `board` differs",
        "~ hash `profile:u1` differs:\n    field `last_active`: expected \"1\", actual \"2\"\n    field `x`: expected (absent), actual \"y\"",
        "- missing key `seen`",
        "~ key `tag:u1`: expected no TTL, found TTL 1 s",
        "+ unexpected key `extra`",
    ] {
        assert!(text.contains(needle), "`{needle}` not in:\n{text}");
    }
    // A TTL a minute or more below the configured one, or above it, or absent, is reported.
    for found in [Some(3_600_000 - TTL_SLACK_MS), Some(3_600_001), None] {
        let mut actual = expected.clone();
        actual.get_mut("profile:u1").expect("key").ttl_ms = found;
        let problems = diff(&expected, &actual);
        assert_eq!(problems.len(), 1, "{found:?}: {problems:#?}");
        assert!(problems[0].contains("expected a TTL in (3540 s, 3600 s]"), "{}", problems[0]);
    }
}
