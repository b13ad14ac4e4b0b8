//! `--trace KEY` and `pulsec why DIR --key KEY`, through the documented commands, on real runs of
//! two examples: for each, a user who gets the message and one who does not, and the verdict
//! names the event that decided it.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pulsec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulsec"))
        .args(args)
        .current_dir(workspace())
        .env("NO_COLOR", "1")
        .output()
        .expect("pulsec runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `pulsec run EXAMPLE --input input.jsonl --output DIR -- ARGS...`
fn run_example(example: &str, output: &Path, args: &[&str]) {
    let pipeline = format!("examples/{example}/pipeline.pulse");
    let input = format!("examples/{example}/input.jsonl");
    let mut all = vec!["run", &pipeline, "--input", &input, "--output", output.to_str().expect("utf-8 path"), "--"];
    all.extend_from_slice(args);
    all.push("--quiet");
    let run = pulsec(&all);
    assert!(run.status.success(), "pulsec run {example}: {}{}", text(&run.stdout), text(&run.stderr));
}

fn why(output: &Path, key: &str) -> String {
    let why = pulsec(&["why", output.to_str().expect("utf-8 path"), "--key", key]);
    assert!(why.status.success(), "pulsec why --key {key}: {}", text(&why.stderr));
    text(&why.stdout)
}

/// The verdict line of `sink`.
fn verdict<'r>(report: &'r str, sink: &str) -> &'r str {
    let after = report.split_once("verdict:\n").map(|(_, verdicts)| verdicts).unwrap_or("");
    after
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with(&format!("sent to {sink} ")) || line.starts_with(&format!("nothing to {sink}:")))
        .unwrap_or_else(|| panic!("no verdict for {sink} in\n{report}"))
}

fn trace_lines(output: &Path) -> Vec<Value> {
    let trace = std::fs::read_to_string(output.join("_trace.jsonl")).expect("the trace is written");
    trace.lines().map(|line| serde_json::from_str(line).expect("each trace line is JSON")).collect()
}

#[test]
fn a_cart_cancelled_by_checkout_gets_no_coupon_and_an_abandoned_one_does() {
    let output = tempfile::tempdir().expect("temp dir");
    run_example("cart-abandonment", output.path(), &["--trace", "u1", "--trace", "u2"]);

    let lines = trace_lines(output.path());
    assert_eq!(lines[0]["decision"], "start");
    assert_eq!(lines[0]["keys"], serde_json::json!(["u1", "u2"]));
    for line in &lines[1..] {
        assert!(line["key"] == "u1" || line["key"] == "u2", "only traced keys are recorded: {line}");
        for field in ["node", "decision", "time", "input", "step"] {
            assert!(line.get(field).is_some(), "`{field}` in {line}");
        }
    }
    // Every input line of u2 is read in the trace, with its position.
    let reads = lines.iter().filter(|line| line["key"] == "u2" && line["decision"] == "read").count();
    let input = std::fs::read_to_string(workspace().join("examples/cart-abandonment/input.jsonl")).expect("input");
    assert_eq!(reads, input.lines().filter(|line| line.contains("\"u2\"")).count());
    assert!(lines.iter().any(|line| line["input"].as_str().is_some_and(|input| input.ends_with("input.jsonl:26"))));

    // u2 added to the cart at 22:25:20 and checked out at 22:33:20: no coupon, and why.
    let u2 = why(output.path(), "u2");
    assert!(
        u2.contains("add_to_cart (input.jsonl:23) → intent: visits_7d=10 → abandoned opened a window until 22:55:20"),
        "{u2}"
    );
    assert!(u2.contains("checkout (input.jsonl:26)"), "{u2}");
    assert_eq!(
        verdict(&u2, "send_coupon"),
        "nothing to send_coupon: cancelled by checkout at 2023-11-14 22:33:20 (at abandoned, in the window opened by add_to_cart at 22:25:20)"
    );
    assert_eq!(verdict(&u2, "converted"), "sent to converted at 2023-11-14 22:33:20 (checkout at 22:33:20)");

    // u1 abandoned six carts: five coupons, the sixth capped.
    let u1 = why(output.path(), "u1");
    assert!(verdict(&u1, "send_coupon").starts_with("sent to send_coupon 5 times: at 2023-11-14 22:53:20"), "{u1}");
    assert!(u1.contains("cap: capped (5 earlier in 7d, max 5) → over_cap got the record"), "{u1}");
    assert!(verdict(&u1, "converted").starts_with("nothing to converted: nothing cancelled the window"), "{u1}");

    // A key that was not traced is refused, naming those that were.
    let refused = pulsec(&["why", output.path().to_str().expect("utf-8 path"), "--key", "u3"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("traced keys: `u1`, `u2`"), "{}", text(&refused.stderr));
}

#[test]
fn a_user_who_watched_gets_no_welcome_and_the_filter_in_front_is_traced() {
    let output = tempfile::tempdir().expect("temp dir");
    run_example("welcome-unless-watched", output.path(), &["--trace", "u1", "--trace", "u2"]);

    // The filter before the first keyed node records the values it compared.
    let lines = trace_lines(output.path());
    let filtered = lines
        .iter()
        .find(|line| line["key"] == "u2" && line["node"] == "logins" && line["out"].is_null())
        .expect("u2's app_open is filtered out");
    assert_eq!(filtered["event_name"], "app_open");
    assert_eq!(filtered["userId"], "u2");

    // u1 logged in and started a video a minute later: no welcome push.
    let u1 = why(output.path(), "u1");
    assert_eq!(
        verdict(&u1, "send_push"),
        "nothing to send_push: the timer at 2023-11-14 22:18:20: watched: yes, video_start at 22:14:20 decided it",
        "{u1}"
    );
    assert!(verdict(&u1, "already_watching").starts_with("sent to already_watching at 2023-11-14 22:18:20"), "{u1}");
    // u2 logged in and only opened the app: the push goes out five minutes later.
    let u2 = why(output.path(), "u2");
    assert!(u2.contains("wait_5min delays it until 22:18:30"), "{u2}");
    assert!(verdict(&u2, "send_push").starts_with("sent to send_push at 2023-11-14 22:18:30"), "{u2}");
}

#[test]
fn without_trace_no_trace_file_is_written() {
    let output = tempfile::tempdir().expect("temp dir");
    run_example("cart-abandonment", output.path(), &[]);
    assert!(!output.path().join("_trace.jsonl").exists());
    let why = pulsec(&["why", output.path().to_str().expect("utf-8 path"), "--key", "u1"]);
    assert_eq!(why.status.code(), Some(2));
    assert!(text(&why.stderr).contains("--trace KEY"), "{}", text(&why.stderr));
}
