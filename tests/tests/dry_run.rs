//! Dry runs over history: `--end-of-input keep` leaves the pending timers unfired and lists them
//! in `_pending.jsonl`; `--report` accounts for every record at every node, so that per node
//! `in + created = sum(out) + dropped + dead_lettered + absorbed + pending`.

mod build;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace exists")
}

/// Runs `binary` over `input` into `dir` with `extra` arguments and returns the report.
fn run_with_report(binary: &Path, input: &Path, dir: &Path, extra: &[&str]) -> Value {
    let report = dir.join("report.json");
    let output = Command::new(binary)
        .arg("run")
        .arg("--quiet")
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(dir.join("out"))
        .arg("--report")
        .arg(&report)
        .args(extra)
        .output()
        .expect("binary runs");
    assert!(output.status.success(), "{}: {}", binary.display(), String::from_utf8_lossy(&output.stderr));
    let text = std::fs::read_to_string(&report).expect("report written");
    serde_json::from_str(&text).expect("report is JSON")
}

fn lines(path: &Path) -> Vec<Value> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.lines().map(|line| serde_json::from_str(line).expect("JSON line")).collect(),
        Err(_) => Vec::new(),
    }
}

fn number(value: &Value, field: &str) -> u64 {
    value[field].as_u64().unwrap_or_else(|| panic!("`{field}` is not a count in {value}"))
}

/// Every node balances; edges carry their port's count; sinks' days add up to what they wrote;
/// the dead letters named for nodes are those of the dead-letter file.
fn check_report(name: &str, report: &Value, out_dir: &Path) {
    let nodes = report["nodes"].as_array().expect("nodes");
    assert!(!nodes.is_empty(), "{name}: no nodes");
    for node in nodes {
        assert_eq!(
            pulse_runtime::report::imbalance(node),
            0,
            "{name}: node `{}` does not add up: {node:#}",
            node["id"]
        );
    }
    for edge in report["edges"].as_array().expect("edges") {
        let from = nodes.iter().find(|node| node["id"] == edge["from"]).expect("edge from a node");
        let port = edge["port"].as_str().expect("port name");
        assert_eq!(edge["records"], from["out"][port], "{name}: edge {edge}");
    }
    // A node's input is what its edges carried (has-done-event nodes also read their
    // sources' records when no `events` edge feeds them).
    for node in nodes.iter().filter(|node| !node["type"].as_str().unwrap_or("").ends_with("-source")) {
        let carried: u64 = report["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .filter(|edge| edge["to"] == node["id"])
            .map(|edge| number(edge, "records"))
            .sum();
        if node["type"] == "has-done-event" {
            assert!(number(node, "in") >= carried, "{name}: {node}");
        } else {
            assert_eq!(number(node, "in"), carried, "{name}: node `{}`", node["id"]);
        }
    }
    for sink in report["sinks"].as_array().expect("sinks") {
        let per_day: u64 = sink["per_day"].as_object().expect("per_day").values().filter_map(Value::as_u64).sum();
        assert_eq!(per_day, number(sink, "written"), "{name}: {sink}");
        let file = out_dir.join(format!("{}.jsonl", sink["node"].as_str().expect("sink id")));
        assert_eq!(lines(&file).len() as u64, number(sink, "written"), "{name}: {}", file.display());
    }
    let dead = lines(&out_dir.join("_dead_letter.jsonl")).len() as u64;
    assert_eq!(number(report, "dead_letters"), dead, "{name}");
    let attributed: u64 = nodes.iter().map(|node| number(node, "dead_lettered")).sum();
    assert_eq!(attributed, dead, "{name}: every dead letter is named for a node");
    let listed = lines(&out_dir.join("_pending.jsonl"));
    for node in nodes {
        let timers = listed.iter().filter(|line| line["node"] == node["id"]).count() as u64;
        assert_eq!(number(node, "pending_timers"), timers, "{name}: node `{}`", node["id"]);
    }
}

#[test]
fn dry_runs_of_the_examples_account_for_every_record() {
    let examples = ["churn-winback", "cart-abandonment", "welcome-unless-watched", "debounce", "decaying-features"];
    for name in examples {
        let dir = workspace().join("examples").join(name);
        let binary = build::build_example(&dir);
        let input = dir.join("input.jsonl");
        let kept_dir = tempfile::tempdir().expect("temp dir");
        let kept = run_with_report(&binary, &input, kept_dir.path(), &["--end-of-input", "keep"]);
        assert_eq!(kept["end_of_input"], "keep");
        check_report(name, &kept, &kept_dir.path().join("out"));
        let fired_dir = tempfile::tempdir().expect("temp dir");
        let fired = run_with_report(&binary, &input, fired_dir.path(), &[]);
        assert_eq!(fired["end_of_input"], "fire");
        check_report(name, &fired, &fired_dir.path().join("out"));
        assert!(!fired_dir.path().join("out/_pending.jsonl").exists(), "{name}: _pending.jsonl without keep");
        // Nothing is pending once the end of input fired everything; the records kept pending
        // are those the full run sent on later.
        let pending = |report: &Value| -> u64 {
            report["nodes"].as_array().expect("nodes").iter().map(|node| number(node, "pending")).sum()
        };
        assert_eq!(pending(&fired), 0, "{name}");
        let nodes = |report: &Value| report["nodes"].as_array().expect("nodes").clone();
        for (kept_node, fired_node) in nodes(&kept).iter().zip(&nodes(&fired)) {
            if kept_node["type"].as_str().unwrap_or("").ends_with("-source") {
                assert_eq!(kept_node["in"], fired_node["in"], "{name}: source `{}`", kept_node["id"]);
            }
        }
        eprintln!("{name}: {} records pending with keep", pending(&kept));
    }
}

const DELAYS: &str = r#"
pipeline delays

event {
  event_name: string
  userId: string?
  ts: timestamp
}

events: file-source("events.jsonl") {
  eventTime: ts
}
wait: delay(1h) by userId
inactive: user-event-trigger(1d) by userId {
  start: event_name == "open"
  cancel: event_name == "open"
}

events -> wait -> waited: file-sink("waited.jsonl")
events -> inactive
inactive.fired -> lapsed: file-sink("lapsed.jsonl")
"#;

#[test]
fn keep_lists_the_timers_due_after_the_last_event() {
    let binary = build::build_text("delays.pulse", DELAYS, None);
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("events.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"event_name":"open","userId":"u1","ts":0}"#,
            "\n",
            r#"{"event_name":"open","userId":"u2","ts":600000}"#,
            "\n",
            r#"{"event_name":"open","userId":"u1","ts":7200000}"#,
            "\n",
            r#"{"event_name":"click","userId":null,"ts":7200000}"#,
            "\n",
        ),
    )
    .expect("input written");
    let report = run_with_report(&binary, &input, dir.path(), &["--end-of-input", "keep"]);
    let out = dir.path().join("out");
    check_report("delays", &report, &out);
    // The watermark is at the last event (2h): the delays of u1 at 0 and u2 at 10m went out,
    // u1's second is due at 3h. u2's window is due at 1d 10m, u1's (reopened at 2h) at 1d 2h.
    assert_eq!(lines(&out.join("waited.jsonl")).len(), 2);
    assert_eq!(lines(&out.join("lapsed.jsonl")).len(), 0);
    let pending = lines(&out.join("_pending.jsonl"));
    let expected: Vec<Value> = vec![
        serde_json::json!({"node": "wait", "key": "u1", "due": 10_800_000, "due_utc": "1970-01-01T03:00:00.000Z",
            "time": "event", "action": "emit", "record": {"event_name": "open", "userId": "u1", "ts": 7_200_000}}),
        serde_json::json!({"node": "inactive", "key": "u2", "due": 87_000_000, "due_utc": "1970-01-02T00:10:00.000Z",
            "time": "event", "action": "emit", "record": {"event_name": "open", "userId": "u2", "ts": 600_000}}),
        serde_json::json!({"node": "inactive", "key": "u1", "due": 93_600_000, "due_utc": "1970-01-02T02:00:00.000Z",
            "time": "event", "action": "emit", "record": {"event_name": "open", "userId": "u1", "ts": 7_200_000}}),
    ];
    assert_eq!(pending, expected);
    let node = |id: &str| {
        report["nodes"].as_array().expect("nodes").iter().find(|node| node["id"] == id).cloned().expect("node")
    };
    let wait = node("wait");
    assert_eq!((number(&wait, "in"), number(&wait, "pending"), number(&wait, "dead_lettered")), (4, 1, 1));
    assert_eq!(wait["distinct_keys"], 2);
    // u1's first window was cancelled by its second open (no `cancelled` edge: dropped).
    let inactive = node("inactive");
    assert_eq!(inactive["out"]["cancelled"], 0);
    assert_eq!((number(&inactive, "dropped"), number(&inactive, "pending")), (1, 2));
    assert_eq!(report["watermark"], 7_200_000);

    // The default fires them all at the end of the input.
    let fired_dir = tempfile::tempdir().expect("temp dir");
    let fired = run_with_report(&binary, &input, fired_dir.path(), &[]);
    check_report("delays (fire)", &fired, &fired_dir.path().join("out"));
    assert_eq!(lines(&fired_dir.path().join("out/waited.jsonl")).len(), 3);
    assert_eq!(lines(&fired_dir.path().join("out/lapsed.jsonl")).len(), 2);
}

/// Headless Chromium from Debian (`scripts/install-deps.sh` installs it), if present.
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().ok()?;
        let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
        (found.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
    })
}

fn headless(chromium: &Path, args: &[&str], page: &Path) -> String {
    let output = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(output.status.success(), "chromium: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// Draws `svg` onto a white canvas in Chromium and counts the pixels that are not near white.
fn ink(chromium: &Path, svg: &str, dir: &Path) -> (u64, u64, u64) {
    let probe = dir.join("probe.html");
    let page = format!(
        r#"<!DOCTYPE html><html><body><canvas id="c"></canvas><p id="result">not drawn</p><script>
const img = new Image();
img.onload = () => {{
  const c = document.getElementById('c');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.fillStyle = '#fff'; g.fillRect(0, 0, c.width, c.height);
  g.drawImage(img, 0, 0);
  const data = g.getImageData(0, 0, c.width, c.height).data;
  let ink = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] < 200 || data[i + 1] < 200 || data[i + 2] < 200) ink++;
  document.getElementById('result').textContent = 'drawn ' + c.width + ' ' + c.height + ' ' + ink;
}};
img.src = 'data:image/svg+xml;base64,{}';
</script></body></html>"#,
        base64(svg.as_bytes())
    );
    std::fs::write(&probe, page).expect("probe written");
    let dom = headless(chromium, &["--virtual-time-budget=5000", "--dump-dom"], &probe);
    let result = dom.split("<p id=\"result\">").nth(1).and_then(|rest| rest.split('<').next()).unwrap_or("");
    let numbers: Vec<u64> = result
        .strip_prefix("drawn ")
        .unwrap_or_else(|| panic!("the SVG did not draw: {result}"))
        .split(' ')
        .map(|number| number.parse().expect("a count"))
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

#[test]
fn report_pictures_render_in_chromium() {
    let Some(chromium) = chromium() else {
        // CI installs it (scripts/install-deps.sh): there a missing browser is a failure, not a skip.
        assert!(std::env::var_os("CI").is_none(), "chromium is not installed; scripts/install-deps.sh installs it");
        eprintln!("SKIPPED: chromium is not installed (scripts/install-deps.sh installs it)");
        return;
    };
    let binary = build::build_text("delays.pulse", DELAYS, None);
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("events.jsonl");
    let events: Vec<String> = (0..40)
        .map(|index| {
            let name = if index % 3 == 0 { "open" } else { "click" };
            format!(r#"{{"event_name":"{name}","userId":"u{}","ts":{}}}"#, index % 7, index * 900_000)
        })
        .collect();
    std::fs::write(&input, events.join("\n") + "\n").expect("input written");
    let report_json = run_with_report(&binary, &input, dir.path(), &["--end-of-input", "keep"]);
    let report = pulsec::report::parse(&report_json.to_string()).expect("the binary's report parses");
    let pictures = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pulse-report");
    std::fs::create_dir_all(&pictures).expect("picture dir");

    let svg = pulsec::report::svg(&report);
    let (width, height, inked) = ink(&chromium, &svg, &pictures);
    let share = inked as f64 / (width * height) as f64;
    eprintln!("report SVG: {width}x{height}, {inked} inked pixels ({:.1}%)", share * 100.0);
    assert!(width > 300 && height > 80 && height < 1000, "{width}x{height}");
    assert!(share > 0.02, "the picture is nearly blank: {share}");

    let page = pictures.join("report.html");
    std::fs::write(&page, pulsec::report::html(&report)).expect("page written");
    std::fs::write(pictures.join("report.svg"), &svg).expect("svg written");
    let screenshot = pictures.join("report.png");
    let _ = std::fs::remove_file(&screenshot);
    headless(&chromium, &[&format!("--screenshot={}", screenshot.display()), "--window-size=1200,900"], &page);
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    let dom = headless(&chromium, &["--dump-dom"], &page);
    for expected in [
        "Pulse run report: delays",
        "Records per day of event time",
        "1970-01-01",
        "node-inactive",
        "dropped 33, pending 7",
        "pending 5",
    ] {
        assert!(dom.contains(expected), "the page lacks `{expected}`");
    }

    // A hostile report: its strings stay text.
    let hostile = report_json.to_string().replace("\"waited\"", "\"<img src=x onerror=alert(1)>\"");
    let page = pictures.join("hostile.html");
    std::fs::write(&page, pulsec::report::html(&pulsec::report::parse(&hostile).expect("parses"))).expect("written");
    let dom = headless(&chromium, &["--dump-dom"], &page);
    assert!(!dom.contains("<img"), "markup from the report reached the page");
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt;"));
}
