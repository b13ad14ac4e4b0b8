//! Message previews: under `--output`, each network sink also writes
//! `<node-id>.rendered.jsonl`, one JSON object per record holding what the live sink would send:
//! the HTTP request of an api-sink, the Redis commands of a redis-sink, the Kafka record of a
//! kafka-sink. Templates are rendered exactly as live; a value from the environment shows as
//! `***` (or `${NAME}` in a URL), so a preview never holds a secret.

use crate::redis_sink;
use crate::RedisCommand;
use serde_json::{json, Value};

/// An api-sink request as `attempt_once` sends it, keys in the order written: the headers of the
/// template, then `Idempotency-Key`, and `Content-Type: application/json` when a body is sent
/// without one; the body exactly as sent (JSON), or as a string when it is not JSON.
pub fn api(method: &str, url: &str, headers: &[(&str, String)], body: Option<&str>, idempotency_key: &str) -> String {
    let string = |text: &str| Value::String(text.to_string()).to_string();
    let mut line = format!("{{\"method\":{},\"url\":{},\"headers\":{{", string(method), string(url));
    let mut pairs: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
    pairs.push(("Idempotency-Key", idempotency_key));
    if body.is_some() && !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        pairs.push(("Content-Type", "application/json"));
    }
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            line.push(',');
        }
        line.push_str(&format!("{}:{}", string(name), string(value)));
    }
    line.push_str("},\"body\":");
    match body {
        Some(body) if serde_json::from_str::<&serde_json::value::RawValue>(body).is_ok() => line.push_str(body.trim()),
        Some(body) => line.push_str(&string(body)),
        None => line.push_str("null"),
    }
    line.push('}');
    line
}

/// The Redis commands of one record, in the order the live sink queues them.
pub fn redis(
    command: RedisCommand,
    trim: Option<u64>,
    ttl_ms: Option<u64>,
    event_json: &str,
    key: &str,
    args: &[&str],
) -> String {
    let mut first = vec![redis_sink::command_name(command).to_string(), key.to_string()];
    if command == RedisCommand::HSet && args.is_empty() {
        for (field, value) in redis_sink::event_fields(event_json) {
            first.push(field);
            first.push(value);
        }
    } else {
        first.extend(args.iter().map(|arg| arg.to_string()));
    }
    let mut commands = vec![first];
    match (command, trim) {
        (RedisCommand::LPush, Some(trim)) => {
            commands.push(vec!["LTRIM".into(), key.into(), "0".into(), (trim as i64 - 1).to_string()])
        }
        (RedisCommand::RPush, Some(trim)) => {
            commands.push(vec!["LTRIM".into(), key.into(), (-(trim as i64)).to_string(), "-1".into()])
        }
        _ => {}
    }
    if let Some(ttl_ms) = ttl_ms {
        commands.push(vec!["PEXPIRE".into(), key.into(), ttl_ms.to_string()]);
    }
    json!({ "commands": commands }).to_string()
}

/// A Kafka record as the live sink produces it.
pub fn kafka(topic: &str, key: Option<&str>, value: &str, record_id: &str) -> String {
    json!({ "topic": topic, "key": key, "headers": { "pulse-id": record_id }, "value": value }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_request_shows_the_headers_the_client_adds() {
        let line = api("POST", "http://h/u/u1", &[("Authorization", "Bearer ***".into())], Some("{\"a\":1}"), "k1");
        let value: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(value["headers"]["Idempotency-Key"], "k1");
        assert_eq!(value["headers"]["Content-Type"], "application/json");
        assert_eq!(value["headers"]["Authorization"], "Bearer ***");
        assert_eq!(value["body"], json!({"a": 1}));
        assert!(
            line.starts_with("{\"method\":\"POST\",\"url\":\"http://h/u/u1\",\"headers\":{\"Authorization\""),
            "{line}"
        );
        let ordered = api("POST", "u", &[], Some("{\"z\":1,\"a\":\"\\\"\"}"), "k");
        assert!(ordered.ends_with("\"body\":{\"z\":1,\"a\":\"\\\"\"}}"), "the body as sent: {ordered}");
        let get = api("GET", "http://h/x", &[], None, "k2");
        assert_eq!(serde_json::from_str::<Value>(&get).expect("json")["body"], Value::Null);
    }

    #[test]
    fn redis_commands_follow_the_live_sink() {
        let line = redis(RedisCommand::HSet, None, Some(1000), "{\"userId\":\"u1\",\"n\":2}", "p:u1", &[]);
        let value: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(value["commands"], json!([["HSET", "p:u1", "n", "2", "userId", "u1"], ["PEXPIRE", "p:u1", "1000"]]));
        let line = redis(RedisCommand::LPush, Some(10), None, "{}", "l", &["x"]);
        let value: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(value["commands"], json!([["LPUSH", "l", "x"], ["LTRIM", "l", "0", "9"]]));
    }
}
