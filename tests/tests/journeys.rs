//! The journey examples deliver through `api-sink` to a real HTTP server on 127.0.0.1: each
//! record the example's expected output lists for the api-sink arrives as exactly one request,
//! with the rendered body, the bearer token from the environment, `[[name]]` placeholders kept,
//! and a distinct `Idempotency-Key`. The token never shows up in the binary's output.

mod build;
mod http_server;

use http_server::{Seen, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const TOKEN: &str = "journey-token-7f3a";

struct Journey {
    example: &'static str,
    sink: &'static str,
    /// Environment variables naming the API base URL and the token.
    url_var: &'static str,
    token_var: &'static str,
    path: &'static str,
    /// The body the API must receive for one record of the sink's expected output.
    body: fn(&Value) -> Value,
}

const JOURNEYS: &[Journey] = &[
    Journey {
        example: "welcome-unless-watched",
        sink: "send_push",
        url_var: "NOTIFY_URL",
        token_var: "NOTIFY_TOKEN",
        path: "/v1/push",
        body: |record| {
            json!({
                "userId": record["userId"],
                "title": "Welcome [[firstName]]!",
                "message": "Start exploring these new shows [[top_show_1]], [[top_show_2]]",
            })
        },
    },
    Journey {
        example: "cart-abandonment",
        sink: "send_coupon",
        url_var: "WHATSAPP_URL",
        token_var: "WHATSAPP_TOKEN",
        path: "/v1/messages",
        body: |record| {
            json!({
                "to": record["userId"],
                "template": "cart_coupon_10",
                "params": {
                    "name": "[[firstName]]",
                    "discount": "10%",
                    "visits": record["counters"]["visits_7d"],
                },
            })
        },
    },
    Journey {
        example: "churn-winback",
        sink: "send_offer",
        url_var: "NOTIFY_URL",
        token_var: "NOTIFY_TOKEN",
        path: "/v1/push",
        body: |record| {
            json!({
                "userId": record["userId"],
                "offer": record["offer"],
                "title": "We miss you, [[firstName]]",
            })
        },
    },
];

fn example_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("examples").join(name)
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

fn sorted(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_key(|value| value.to_string());
    values
}

#[test]
fn journey_examples_deliver_every_expected_message_once_through_the_api() {
    for journey in JOURNEYS {
        let dir = example_dir(journey.example);
        let binary = build::build_example(&dir);
        let server = Server::start(&[]);
        let work = tempfile::tempdir().expect("temp dir");
        let output = Command::new(&binary)
            .current_dir(work.path())
            .arg("--input")
            .arg(dir.join("input.jsonl"))
            .arg("--dead-letter")
            .arg(work.path().join("dead.jsonl"))
            .env(journey.url_var, &server.base)
            .env(journey.token_var, TOKEN)
            .output()
            .expect("the example binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}: {stderr}", journey.example);
        assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN), "{}: the token leaked:\n{stderr}", journey.example);

        let expected_records = json_lines(&dir.join("expected").join(format!("{}.jsonl", journey.sink)));
        assert!(!expected_records.is_empty(), "{}: the example sends nothing", journey.example);
        let requests: Vec<Seen> = server.requests();
        for request in &requests {
            assert_eq!(request.method, "POST", "{}", journey.example);
            assert_eq!(request.path, journey.path, "{}", journey.example);
            assert_eq!(request.headers.get("authorization"), Some(&format!("Bearer {TOKEN}")), "{}", journey.example);
            assert_eq!(
                request.headers.get("content-type").map(String::as_str),
                Some("application/json"),
                "{}",
                journey.example
            );
        }
        let bodies: Vec<Value> = requests
            .iter()
            .map(|request| serde_json::from_str(&request.body).expect("the request body is JSON"))
            .collect();
        let wanted: Vec<Value> = expected_records.iter().map(journey.body).collect();
        assert_eq!(sorted(bodies), sorted(wanted), "{}: request bodies", journey.example);

        let mut keys: Vec<&String> =
            requests.iter().map(|request| request.headers.get("idempotency-key").expect("Idempotency-Key")).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), requests.len(), "{}: idempotency keys repeat", journey.example);

        // Dead letters are the example's, unchanged by sending through HTTP.
        let dead = work.path().join("dead.jsonl");
        let dead = if dead.exists() { json_lines(&dead) } else { Vec::new() };
        let expected_dead = json_lines(&dir.join("expected").join("_dead_letter.jsonl"));
        assert_eq!(dead.len(), expected_dead.len(), "{}: dead letters", journey.example);
    }
}
