//! `pulsec test` with time: expected records at an event time (`at 5m`), clock steps, partial
//! records, quiet spans (`nothing until 5m`) and the dead letters of a failing test. The same
//! test blocks run on a `delay(5m)` and a `delay(5h)` pipeline: before timed expectations both
//! passed, since every pending timer fires at the end of the input.

use pulsec::load::load_text;

const PIPELINE: &str = r#"pipeline timed-tests-DURATION

event {
  event_name: string
  userId: string?
  ts: timestamp
}

events: file-source("events.jsonl") {
  eventTime: ts
}

events
  -> logins: filter(event_name == "login_success")
  -> wait: delay(DURATION) by userId
  -> pushes: file-sink("pushes.jsonl")

test "the push goes out five minutes after the login" {
  inputs: [
    { event_name: "login_success", userId: "u1", ts: 0 },
  ]
  expect: {
    pushes: [
      at 5m { event_name: "login_success", userId: "u1", ts: 0 },
    ]
  }
}

test "nothing is sent before five minutes, then the push" {
  inputs: [
    { event_name: "login_success", userId: "u1", ts: 0 },
    clock 4m,
    clock 5m,
    { event_name: "home_seen", userId: "u1", ts: 5m },
  ]
  expect: {
    pushes: [
      nothing until 5m,
      at 5m partial { userId: "u1" },
      nothing from 6m,
    ]
  }
}

test "a clock step makes an older login late" {
  inputs: [
    { event_name: "login_success", userId: "u1", ts: 0 },
    clock 10m,
    { event_name: "login_success", userId: "u2", ts: 1m },
  ]
  expect: {
    pushes: [
      at 5m partial { userId: "u1" },
    ]
    dead_letters: [
      { event_name: "login_success", userId: "u2", ts: 1m },
    ]
  }
}

test "fails: a login without a user is dead-lettered, not pushed" {
  inputs: [
    { event_name: "login_success", ts: 0 },
  ]
  expect: {
    pushes: [
      at 5m partial { event_name: "login_success" },
    ]
  }
}

test "fails: a partial record whose listed field differs" {
  inputs: [
    { event_name: "login_success", userId: "u1", ts: 0 },
  ]
  expect: {
    pushes: [
      partial { userId: "u9" },
    ]
  }
}
"#;

fn run(duration: &str) -> Vec<(String, String)> {
    let source = PIPELINE.replace("DURATION", duration);
    let loaded = load_text("timed.pulse", source, &|_| Err(std::io::ErrorKind::NotFound.into()));
    assert!(!loaded.has_errors(), "{}", pulsec::render::human(&loaded.sources, &loaded.diagnostics, false));
    let cases = pulsec::testing::test_cases(&loaded).expect("valid test blocks");
    let outcomes = pulsec::testing::run(&loaded, "timed.pulse", &cases).expect("builds");
    outcomes.into_iter().map(|outcome| (outcome.name, outcome.failure)).collect()
}

#[test]
fn timed_expectations_tell_a_five_minute_delay_from_a_five_hour_one() {
    let five_minutes = run("5m");
    for (name, failure) in &five_minutes {
        assert_eq!(name.starts_with("fails:"), !failure.is_empty(), "{name}:\n{failure}");
    }
    let dead_lettered = &five_minutes[3].1;
    assert!(
        dead_lettered.contains("- missing (at 5m, partial): {\"event_name\":\"login_success\"}"),
        "{dead_lettered}"
    );
    assert!(dead_lettered.contains("dead letters of this run (1):"), "{dead_lettered}");
    assert!(dead_lettered.contains("null-key: field `userId` is null or absent at node `wait`"), "{dead_lettered}");
    let partial = &five_minutes[4].1;
    assert!(partial.contains("expected (partial): {\"userId\":\"u9\"}"), "{partial}");
    assert!(partial.contains("field `userId`: expected \"u9\", found \"u1\""), "{partial}");

    let five_hours = run("5h");
    let failed: Vec<&str> =
        five_hours.iter().filter(|(_, failure)| !failure.is_empty()).map(|(name, _)| name.as_str()).collect();
    assert_eq!(failed.len(), five_hours.len(), "every test fails on a 5h delay: {five_hours:#?}");
    let timed = &five_hours[0].1;
    assert!(
        timed.contains("expected (at 5m): {\"event_name\":\"login_success\",\"ts\":0,\"userId\":\"u1\"}"),
        "{timed}"
    );
    assert!(timed.contains("emitted at 5h: {\"event_name\":\"login_success\",\"ts\":0,\"userId\":\"u1\"}"), "{timed}");
    assert!(timed.contains("time: expected 5m, emitted 5h"), "{timed}");
    let quiet = &five_hours[1].1;
    assert!(quiet.contains("emitted at 5h during `nothing from 6m`"), "{quiet}");
}
