//! Tests of the JSON front end: the reader and its recovery, JSON -> Document, Document -> JSON,
//! the JSON Schema import, and property tests that nothing panics on arbitrary input.

use pulse_syntax::ast::{Document, Member, Number, Value, ValueKind};
use pulse_syntax::codes;
use pulse_syntax::json::{json_schema_to_schema, parse_json_document, print_json_document, read_json};
use pulse_syntax::{Diagnostic, FileId, Span};

/// The sample DAG from the seed article, with the `,` after the `brokers` line that the article lacks.
const SEED: &str = r#"{
  "name": "welcome-message-d0",
  "description": "Send welcome push to first-time users 5 min after home_seen",
  "version": "1.0",

  "runtime": {
    "checkpointInterval": 120000,
    "stateBackend": "rocksdb",
    "restartStrategy": "exponential",
    "readSetting": "group-offsets"
  },

  "nodes": [
    {
      "id": "source",
      "type": "kafka-source",
      "config": {
        "topic": "events",
        "brokers": "broker1:9092,broker2:9092,broker3:9092",
        "groupId": "welcome-d0-prod"
      }
    },
    {
      "id": "login_filter",
      "type": "filter",
      "config": {
        "where": {
          "and": [
            { "field": "event_name", "equals": "login_success" },
            { "field": "userId", "isNotNull": true }
          ]
        }
      }
    },
    {
      "id": "wait_5min",
      "type": "delay",
      "config": {
        "duration": "5m",
        "keyBy": "userId"
      }
    },
    {
      "id": "send_push",
      "type": "api-sink",
      "config": {
        "url": "https://notify.service/send",
        "method": "POST",
        "body": {
          "userId": "{{ userId }}",
          "title": "Welcome [[firstName]]!",
          "message": "Start exploring these new shows [[top_show_1]], [[top_show_2]]"
        }
      }
    }
  ],

  "edges": [
    "source -> login_filter",
    "login_filter -> wait_5min",
    "wait_5min -> send_push"
  ]
}"#;

/// The seed as printed in the article: no `,` after the `brokers` member.
fn seed_as_printed() -> String {
    let broken = SEED.replacen("broker3:9092\",", "broker3:9092\"", 1);
    assert_ne!(broken, SEED);
    broken
}

const FILE: FileId = FileId(7);

fn read(text: &str) -> (Option<Value>, Vec<Diagnostic>) {
    read_json(FILE, text)
}

fn parse(text: &str) -> (Option<Document>, Vec<Diagnostic>) {
    parse_json_document(FILE, text)
}

fn slice(text: &str, span: Span) -> &str {
    &text[span.range()]
}

/// The single diagnostic of `text`, asserting there is exactly one.
fn only_diagnostic(diagnostics: Vec<Diagnostic>) -> Diagnostic {
    assert_eq!(diagnostics.len(), 1, "expected exactly one diagnostic, got {diagnostics:#?}");
    diagnostics.into_iter().next().expect("one diagnostic")
}

fn primary_text<'t>(text: &'t str, diagnostic: &Diagnostic) -> &'t str {
    slice(text, diagnostic.primary_span().expect("a primary label"))
}

fn member<'v>(value: &'v Value, key: &str) -> &'v Value {
    let members = value.as_object().expect("an object");
    &members.iter().find(|member| member.key.node == key).expect("the key").value
}

/// Spans are part of `Value` and `Document` equality, so round trips compare span-free copies.
fn strip_document(mut doc: Document) -> Document {
    doc.file = FileId::default();
    doc.span = Span::default();
    doc.nodes_span = doc.nodes_span.map(|_| Span::default());
    doc.edges_span = doc.edges_span.map(|_| Span::default());
    doc.settings = doc.settings.into_iter().map(strip_member).collect();
    for node in &mut doc.nodes {
        node.span = Span::default();
        node.config = strip_value(node.config.clone());
    }
    for edge in &mut doc.edges {
        edge.span = Span::default();
    }
    for test in &mut doc.tests {
        test.span = Span::default();
        test.body = strip_value(test.body.clone());
    }
    doc
}

fn strip_member(member: Member) -> Member {
    Member { key: member.key, value: strip_value(member.value) }
}

fn strip_value(value: Value) -> Value {
    let kind = match value.kind {
        ValueKind::Array(elements) => ValueKind::Array(elements.into_iter().map(strip_value).collect()),
        ValueKind::Object(members) => ValueKind::Object(members.into_iter().map(strip_member).collect()),
        other => other,
    };
    Value::new(kind, Span::default())
}

mod json_reader {
    use super::*;

    #[test]
    fn reads_the_seed_with_spans_on_values_and_keys() {
        let (value, diagnostics) = read(SEED);
        assert!(diagnostics.is_empty(), "{diagnostics:#?}");
        let value = value.expect("a value");
        assert_eq!(value.span.range(), 0..SEED.len());
        let runtime = member(&value, "runtime");
        assert_eq!(member(runtime, "checkpointInterval").kind, ValueKind::Number(Number::Int(120000)));
        assert_eq!(slice(SEED, member(runtime, "checkpointInterval").span), "120000");
        let key = &runtime.as_object().expect("object")[1].key;
        assert_eq!((key.node.as_str(), slice(SEED, key.span)), ("stateBackend", "\"stateBackend\""));
        assert_eq!(slice(SEED, member(&value, "name").span), "\"welcome-message-d0\"");
        assert_eq!(value.span.file, FILE);
    }

    #[test]
    fn seed_as_printed_has_exactly_one_missing_comma() {
        let text = seed_as_printed();
        let (value, diagnostics) = read(&text);
        let diagnostic = only_diagnostic(diagnostics);
        assert_eq!(diagnostic.code, codes::E0001);
        assert_eq!(diagnostic.message, "expected `,` or `}` after object member");
        let primary = diagnostic.primary_span().expect("primary");
        let after_brokers = text.find("broker3:9092\"").expect("brokers") + "broker3:9092\"".len();
        assert_eq!((primary.start as usize, primary.end as usize), (after_brokers, after_brokers));
        assert_eq!(diagnostic.labels[0].message, "expected `,` here");
        let secondary = diagnostic.labels.iter().find(|label| !label.primary).expect("secondary");
        assert_eq!(slice(&text, secondary.span), "\"groupId\"");
        assert_eq!(secondary.message, "next member starts here");
        assert_eq!(diagnostic.help.as_deref(), Some("add a `,` after the previous value"));
        // Recovery reads on as if the `,` were there.
        let nodes = member(value.as_ref().expect("value"), "nodes");
        let config = member(&nodes_first(nodes), "config").clone();
        assert_eq!(member(&config, "groupId").as_str(), Some("welcome-d0-prod"));
    }

    fn nodes_first(nodes: &Value) -> Value {
        match &nodes.kind {
            ValueKind::Array(elements) => elements[0].clone(),
            _ => panic!("not an array"),
        }
    }

    #[test]
    fn numbers() {
        let text = r#"[0, -0, 42, -7, 9223372036854775807, 9223372036854775808, 1.5, -2e3, 1E-2, 0.0]"#;
        let (value, diagnostics) = read(text);
        assert!(diagnostics.is_empty(), "{diagnostics:#?}");
        let ValueKind::Array(elements) = value.expect("value").kind else { panic!("array") };
        let numbers: Vec<Number> = elements
            .into_iter()
            .map(|element| match element.kind {
                ValueKind::Number(number) => number,
                other => panic!("not a number: {other:?}"),
            })
            .collect();
        assert_eq!(
            numbers,
            vec![
                Number::Int(0),
                Number::Int(0),
                Number::Int(42),
                Number::Int(-7),
                Number::Int(i64::MAX),
                Number::Float(9223372036854775808.0),
                Number::Float(1.5),
                Number::Float(-2000.0),
                Number::Float(0.01),
                Number::Float(0.0),
            ]
        );
    }

    #[test]
    fn number_out_of_range_is_e0109() {
        let text = r#"{"a": 1e999, "b": 2}"#;
        let (value, diagnostics) = read(text);
        let diagnostic = only_diagnostic(diagnostics);
        assert_eq!(diagnostic.code, codes::E0109);
        assert_eq!(diagnostic.message, "number `1e999` is out of range");
        assert_eq!(primary_text(text, &diagnostic), "1e999");
        assert_eq!(member(&value.expect("value"), "b").kind, ValueKind::Number(Number::Int(2)));
    }

    #[test]
    fn nan_and_infinity_are_e0109() {
        for (text, word) in [("[NaN]", "NaN"), ("[-Infinity]", "-Infinity"), ("[Infinity]", "Infinity")] {
            let diagnostic = only_diagnostic(read(text).1);
            assert_eq!(diagnostic.code, codes::E0109, "{text}");
            assert_eq!(primary_text(text, &diagnostic), word);
        }
    }

    #[test]
    fn malformed_numbers() {
        let cases = [
            ("[01]", "leading zeros are not allowed in JSON numbers", Some("write `1`")),
            ("[-007.5]", "leading zeros are not allowed in JSON numbers", Some("write `-7.5`")),
            ("[+1]", "JSON numbers cannot start with `+`", Some("write `1`")),
            ("[.5]", "JSON numbers need a digit before `.`", Some("write `0.5`")),
            ("[5.]", "expected a digit after `.` in number", Some("write `5.0`")),
            ("[1e]", "expected a digit in the exponent of a number", None),
            ("[-]", "expected a digit after `-`", None),
            ("[0x1F]", "invalid number `0x1F`", None),
        ];
        for (text, message, help) in cases {
            let diagnostic = only_diagnostic(read(text).1);
            assert_eq!(diagnostic.code, codes::E0001, "{text}");
            assert_eq!(diagnostic.message, message, "{text}");
            assert_eq!(diagnostic.help.as_deref(), help, "{text}");
            assert_eq!(primary_text(text, &diagnostic), &text[1..text.len() - 1]);
        }
    }

    #[test]
    fn duplicate_key_points_at_both() {
        let text = r#"{"id": "a", "type": "filter", "id": "b"}"#;
        let (value, diagnostics) = read(text);
        let diagnostic = only_diagnostic(diagnostics);
        assert_eq!(diagnostic.code, codes::E0003);
        assert_eq!(diagnostic.message, "duplicate key `id`");
        assert_eq!(diagnostic.primary_span().expect("primary").start as usize, text.rfind("\"id\"").expect("id"));
        let first = diagnostic.labels.iter().find(|label| !label.primary).expect("secondary");
        assert_eq!((first.span.start, first.message.as_str()), (1, "first defined here"));
        assert_eq!(value.expect("value").as_object().expect("object").len(), 3);
    }

    #[test]
    fn missing_comma_in_array() {
        let text = "[1, 2 3, {\"a\": 1} {\"b\": 2}]";
        let (value, diagnostics) = read(text);
        assert_eq!(diagnostics.len(), 2, "{diagnostics:#?}");
        assert_eq!(diagnostics[0].message, "expected `,` or `]` after array element");
        assert_eq!(diagnostics[0].primary_span().expect("primary").range(), 5..5);
        assert_eq!(slice(text, diagnostics[0].labels[1].span), "3");
        assert_eq!(diagnostics[1].primary_span().expect("primary").range(), 17..17);
        assert_eq!(slice(text, diagnostics[1].labels[1].span), "{");
        let ValueKind::Array(elements) = value.expect("value").kind else { panic!("array") };
        assert_eq!(elements.len(), 5);
    }

    #[test]
    fn unterminated_string_is_one_error() {
        let text = "{\n  \"topic\": \"events,\n  \"groupId\": \"g\"\n}";
        let (value, diagnostics) = read(text);
        let diagnostic = only_diagnostic(diagnostics);
        assert_eq!(diagnostic.message, "unterminated string");
        assert_eq!(primary_text(text, &diagnostic), "\"events,");
        assert_eq!(diagnostic.help.as_deref(), Some("add a `\"` at the end of the string"));
        let value = value.expect("value");
        assert_eq!(member(&value, "topic").as_str(), Some("events,"));
        assert_eq!(member(&value, "groupId").as_str(), Some("g"));
    }

    #[test]
    fn unterminated_string_at_end_of_file() {
        let text = "{\"a\": \"b";
        let (_, diagnostics) = read(text);
        assert_eq!(diagnostics[0].message, "unterminated string");
        assert!(diagnostics.iter().all(|diagnostic| diagnostic.code == codes::E0001));
    }

    #[test]
    fn trailing_commas() {
        for (text, message, comma) in
            [("{\"a\": 1,}", "trailing `,` in object", 7), ("[1, 2, ]", "trailing `,` in array", 5)]
        {
            let (value, diagnostics) = read(text);
            let diagnostic = only_diagnostic(diagnostics);
            assert_eq!(diagnostic.message, message);
            assert_eq!(diagnostic.primary_span().expect("primary").range(), comma..comma + 1);
            assert_eq!(diagnostic.help.as_deref(), Some("remove this `,`"));
            assert_eq!(value.expect("value").span.range(), 0..text.len());
        }
    }

    #[test]
    fn single_quoted_strings_are_read_and_reported() {
        let text = "{'topic': 'it\\'s'}";
        let (value, diagnostics) = read(text);
        assert_eq!(diagnostics.len(), 2, "{diagnostics:#?}");
        assert!(diagnostics.iter().all(|diagnostic| diagnostic.message == "strings must use double quotes"));
        assert_eq!(diagnostics[0].help.as_deref(), Some("write `\"topic\"`"));
        assert_eq!(diagnostics[1].help.as_deref(), Some("write `\"it's\"`"));
        assert_eq!(member(&value.expect("value"), "topic").as_str(), Some("it's"));
    }

    #[test]
    fn comments_are_reported_and_skipped() {
        let text = "{\n  // the source\n  \"a\": 1, /* block */ \"b\": 2\n}";
        let (value, diagnostics) = read(text);
        assert_eq!(diagnostics.len(), 2, "{diagnostics:#?}");
        assert_eq!(diagnostics[0].message, "comments are not allowed in JSON");
        assert_eq!(primary_text(text, &diagnostics[0]), "// the source");
        assert_eq!(primary_text(text, &diagnostics[1]), "/* block */");
        assert_eq!(value.expect("value").as_object().expect("object").len(), 2);
    }

    #[test]
    fn unquoted_keys_and_foreign_literals() {
        let text = "{topic: \"t\", \"on\": True, \"off\": None, \"x\": nul, \"y\": abc}";
        let (value, diagnostics) = read(text);
        let messages: Vec<&str> = diagnostics.iter().map(|diagnostic| diagnostic.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unquoted key `topic`",
                "`True` is not a JSON literal",
                "`None` is not a JSON literal",
                "unquoted string `nul`",
                "unquoted string `abc`"
            ]
        );
        assert_eq!(diagnostics[0].help.as_deref(), Some("write `\"topic\"`"));
        assert_eq!(diagnostics[1].help.as_deref(), Some("write `true`"));
        assert_eq!(diagnostics[3].help.as_deref(), Some("did you mean `null`?"));
        assert_eq!(diagnostics[4].help.as_deref(), Some("write `\"abc\"`"));
        let value = value.expect("value");
        assert_eq!(member(&value, "topic").as_str(), Some("t"));
        assert_eq!(member(&value, "on").kind, ValueKind::Bool(true));
        assert_eq!(member(&value, "off").kind, ValueKind::Null);
    }

    #[test]
    fn missing_and_wrong_colon() {
        let text = r#"{"a" 1, "b" = 2, "c"}"#;
        let (value, diagnostics) = read(text);
        let messages: Vec<&str> = diagnostics.iter().map(|diagnostic| diagnostic.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "expected `:` after key `a`, found `1`",
                "expected `:` after key `b`, found `=`",
                "expected `:` after key `c`, found `}`"
            ]
        );
        assert_eq!(diagnostics[0].primary_span().expect("primary").range(), 4..4);
        assert_eq!(primary_text(text, &diagnostics[1]), "=");
        let value = value.expect("value");
        assert_eq!(member(&value, "a").kind, ValueKind::Number(Number::Int(1)));
        assert_eq!(member(&value, "b").kind, ValueKind::Number(Number::Int(2)));
    }

    #[test]
    fn escapes() {
        let text = r#"["a\"b\\c\/d\b\f\n\r\t", "\u00e9\ud83d\ude00", "x\qy", "\u12", "\ud800x"]"#;
        let (value, diagnostics) = read(text);
        let messages: Vec<&str> = diagnostics.iter().map(|diagnostic| diagnostic.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "invalid escape `\\q` in string",
                "invalid unicode escape in string",
                "unpaired surrogate `\\uD800` in string"
            ]
        );
        assert_eq!(primary_text(text, &diagnostics[0]), "\\q");
        assert_eq!(primary_text(text, &diagnostics[1]), "\\u12");
        let ValueKind::Array(elements) = value.expect("value").kind else { panic!("array") };
        let strings: Vec<&str> = elements.iter().map(|element| element.as_str().expect("string")).collect();
        assert_eq!(strings, ["a\"b\\c/d\u{8}\u{c}\n\r\t", "é😀", "x\\qy", "\u{fffd}", "\u{fffd}x"]);
    }

    #[test]
    fn control_character_in_string() {
        let text = "[\"a\tb\"]";
        let diagnostic = only_diagnostic(read(text).1);
        assert_eq!(diagnostic.message, "control character in string");
        assert_eq!(diagnostic.help.as_deref(), Some("write it as `\\t`"));
    }

    #[test]
    fn unclosed_containers() {
        let text = "{\"a\": [1, 2";
        let (value, diagnostics) = read(text);
        let diagnostic = only_diagnostic(diagnostics);
        assert_eq!(diagnostic.message, "expected `]` to close the array, found end of file");
        assert_eq!(diagnostic.primary_span().expect("primary").range(), text.len()..text.len());
        assert!(value.is_some());

        // A forgotten `}` inside an array: the `]` closes both, with one error.
        let text = "{\"nodes\": [{\"id\": \"a\"], \"edges\": []}";
        let (value, diagnostics) = read(text);
        let diagnostic = only_diagnostic(diagnostics);
        assert_eq!(diagnostic.message, "expected `}` to close the object, found `]`");
        assert_eq!(diagnostic.primary_span().expect("primary").range(), 21..21);
        assert_eq!(member(&value.expect("value"), "edges").kind, ValueKind::Array(vec![]));
    }

    #[test]
    fn forgotten_closing_brace_between_array_objects_is_one_error() {
        let text = "[\n  {\"id\": \"a\", \"config\": {}\n  {\"id\": \"b\"}\n]";
        let (value, diagnostics) = read(text);
        let diagnostic = only_diagnostic(diagnostics);
        assert_eq!(diagnostic.message, "expected `}` to close the object, found `{`");
        let after_config = text.find("{}").expect("config") + 2;
        assert_eq!(diagnostic.primary_span().expect("primary").range(), after_config..after_config);
        let ValueKind::Array(elements) = value.expect("value").kind else { panic!("array") };
        assert_eq!(elements.len(), 2);
        assert_eq!(member(&elements[1], "id").as_str(), Some("b"));
    }

    #[test]
    fn unterminated_string_that_swallows_closers_is_one_error() {
        let text = "{\"nodes\": [{\"url\": \"http://x }},\n], \"edges\": []}";
        let (value, diagnostics) = read(text);
        assert_eq!(only_diagnostic(diagnostics).message, "unterminated string");
        assert_eq!(member(&value.expect("value"), "edges").kind, ValueKind::Array(vec![]));
    }

    #[test]
    fn missing_opening_quote() {
        let text = r#"{"topic": events", "b": 1}"#;
        let (value, diagnostics) = read(text);
        let diagnostic = only_diagnostic(diagnostics);
        assert_eq!(diagnostic.message, "string `events\"` has no opening quote");
        assert_eq!(diagnostic.primary_span().expect("primary").range(), 10..10);
        assert_eq!(diagnostic.help.as_deref(), Some("write `\"events\"`"));
        assert_eq!(member(&value.expect("value"), "topic").as_str(), Some("events"));
    }

    #[test]
    fn missing_quotes_around_keys_and_values() {
        let cases = [
            (r#"{"id: "a"}"#, "key `id` has no closing quote", 4),
            (r#"{id": "a"}"#, "key `id\"` has no opening quote", 1),
            (r#"{"d": send welcome push", "e": 1}"#, "string `send welcome push\"` has no opening quote", 6),
        ];
        for (text, message, at) in cases {
            let (value, diagnostics) = read(text);
            let diagnostic = only_diagnostic(diagnostics);
            assert_eq!(diagnostic.message, message, "{text}");
            assert_eq!(diagnostic.primary_span().expect("primary").range(), at..at, "{text}");
            assert!(value.expect("value").as_object().expect("object")[0].value.as_str().is_some());
        }
    }

    #[test]
    fn missing_opening_brace() {
        let text = "{\"config\":\n  \"topic\": \"t\", \"keyBy\": \"k\"\n}, \"b\": 1}";
        let (value, diagnostics) = read(text);
        let diagnostic = only_diagnostic(diagnostics);
        assert_eq!(diagnostic.message, "expected `{` before key `topic`");
        let at = text.find("\"topic").expect("topic");
        assert_eq!(diagnostic.primary_span().expect("primary").range(), at..at);
        let value = value.expect("value");
        assert_eq!(member(member(&value, "config"), "keyBy").as_str(), Some("k"));
        assert_eq!(member(&value, "b").kind, ValueKind::Number(Number::Int(1)));
    }

    /// Recovery quality: deleting any one character of the seed rarely gives more than two errors.
    #[test]
    fn single_deletions_of_the_seed_rarely_cascade() {
        let mut n_cascades = 0;
        let mut n_single = 0;
        for (idx, _) in SEED.char_indices() {
            let mut text = SEED.to_string();
            text.remove(idx);
            let n_diagnostics = parse(&text).1.len();
            n_cascades += usize::from(n_diagnostics > 2);
            n_single += usize::from(n_diagnostics == 1);
        }
        assert!(n_cascades <= 10, "{n_cascades} deletions gave more than two errors");
        assert!(n_single >= 250, "only {n_single} deletions gave exactly one error");
    }

    #[test]
    fn unexpected_characters() {
        let text = "{\"a\": @, \"b\": 1 2, \"c\": \u{201c}x\u{201d}}";
        let (value, diagnostics) = read(text);
        let messages: Vec<&str> = diagnostics.iter().map(|diagnostic| diagnostic.message.as_str()).collect();
        assert_eq!(messages[0], "expected a value, found `@`");
        assert_eq!(messages[1], "expected `,` or `}` after object member, found `2`");
        assert_eq!(messages[2], "typographic quote `\u{201c}` is not valid JSON");
        assert_eq!(member(&value.expect("value"), "b").kind, ValueKind::Number(Number::Int(1)));
    }

    #[test]
    fn empty_document_and_trailing_text() {
        let (value, diagnostics) = read("  \n");
        assert!(value.is_none());
        assert_eq!(only_diagnostic(diagnostics).message, "expected a JSON value, found end of file");

        let text = "{\"a\": 1} x";
        let (value, diagnostics) = read(text);
        assert!(value.is_some());
        let diagnostic = only_diagnostic(diagnostics);
        assert_eq!(diagnostic.message, "unexpected `x` after the end of the JSON document");
        assert_eq!(primary_text(text, &diagnostic), "x");
    }

    #[test]
    fn extra_comma() {
        let text = "[1,, 2]";
        let diagnostic = only_diagnostic(read(text).1);
        assert_eq!(diagnostic.message, "expected a value, found `,`");
        assert_eq!(primary_text(text, &diagnostic), ",");
    }

    #[test]
    fn semicolon_separator() {
        let text = "{\"a\": 1; \"b\": 2}";
        let (value, diagnostics) = read(text);
        assert_eq!(only_diagnostic(diagnostics).help.as_deref(), Some("replace the `;` with `,`"));
        assert_eq!(value.expect("value").as_object().expect("object").len(), 2);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let (value, diagnostics) = read(&text);
        assert!(value.is_some());
        assert_eq!(only_diagnostic(diagnostics).message, "JSON is nested more than 128 levels deep");
    }
}

mod json_document {
    use super::*;

    fn document(text: &str) -> Document {
        let (doc, diagnostics) = parse(text);
        assert!(diagnostics.is_empty(), "{diagnostics:#?}");
        doc.expect("a document")
    }

    fn errors(text: &str) -> Vec<Diagnostic> {
        parse(text).1
    }

    #[test]
    fn seed_becomes_a_document() {
        let doc = document(SEED);
        assert_eq!(doc.nodes.len(), 4);
        assert_eq!(doc.edges.len(), 3);
        let settings: Vec<&str> = doc.settings.iter().map(|member| member.key.node.as_str()).collect();
        assert_eq!(settings, ["name", "description", "version", "runtime"]);
        let ids: Vec<&str> = doc.nodes.iter().map(|node| node.id.node.as_str()).collect();
        assert_eq!(ids, ["source", "login_filter", "wait_5min", "send_push"]);
        assert_eq!(doc.nodes[2].kind.node, "delay");
        assert_eq!(slice(SEED, doc.nodes[0].id.span), "\"source\"");
        assert_eq!(member(&doc.nodes[2].config, "duration").as_str(), Some("5m"));
        let edge = &doc.edges[1];
        assert_eq!((edge.from.node.as_str(), edge.to.node.as_str()), ("login_filter", "wait_5min"));
        assert_eq!(slice(SEED, edge.from.span), "login_filter");
        assert_eq!(slice(SEED, edge.to.span), "wait_5min");
        assert_eq!(slice(SEED, edge.span), "\"login_filter -> wait_5min\"");
        assert!(slice(SEED, doc.nodes_span.expect("nodes")).starts_with("\"nodes\": ["));
        assert!(slice(SEED, doc.edges_span.expect("edges")).ends_with(']'));
        assert_eq!(doc.setting("name").and_then(Value::as_str), Some("welcome-message-d0"));
    }

    #[test]
    fn seed_as_printed_gives_one_error_and_a_complete_document() {
        let (doc, diagnostics) = parse(&seed_as_printed());
        assert_eq!(only_diagnostic(diagnostics).code, codes::E0001);
        let doc = doc.expect("a document");
        assert_eq!((doc.nodes.len(), doc.edges.len()), (4, 3));
        assert_eq!(strip_document(doc), strip_document(document(SEED)));
    }

    #[test]
    fn edges_with_ports() {
        let text = r#"{"edges": ["split.high_intent -> coupon", "a->b.events", "  x  ->  y-z  "]}"#;
        let doc = document(text);
        let edge = &doc.edges[0];
        assert_eq!(slice(text, edge.from.span), "split");
        assert_eq!(slice(text, edge.from_port.as_ref().expect("port").span), "high_intent");
        assert_eq!(edge.to.node, "coupon");
        assert!(edge.to_port.is_none());
        let edge = &doc.edges[1];
        assert_eq!((edge.from.node.as_str(), edge.to.node.as_str()), ("a", "b"));
        assert_eq!(slice(text, edge.to_port.as_ref().expect("port").span), "events");
        assert_eq!(slice(text, doc.edges[2].to.span), "y-z");
    }

    #[test]
    fn edge_errors_point_at_the_spot() {
        let cases = [
            ("source login", "expected `->` in edge, found `l`", "", "source ".len()),
            ("source", "edge `source` has no target", "", "source".len()),
            ("source -> ", "edge `source ->` has no target", "", "source -> ".len()),
            ("-> sink", "edge `-> sink` has no source", "", 0),
            ("a -> b -> c", "an edge connects exactly two nodes", "-> c", "a -> b ".len()),
            ("a.b.c -> d", "edge endpoint `a.b.c` has more than one `.`", ".", 3),
            ("a. -> d", "expected an output name after `.` in `a.`", ".", 1),
            ("a -> b c", "unexpected `c` after the edge's target", "c", 7),
            ("sourcé -> b", "invalid character `é` in edge endpoint `sourcé`", "é", 5),
            ("   ", "empty edge", "\"   \"", 0),
        ];
        for (edge, message, primary, offset) in cases {
            let text = format!("{{\"edges\": [\"{edge}\"]}}");
            let (doc, diagnostics) = parse(&text);
            let diagnostic = only_diagnostic(diagnostics);
            assert_eq!(diagnostic.code, codes::E0108, "{edge}");
            assert_eq!(diagnostic.message, message, "{edge}");
            assert_eq!(primary_text(&text, &diagnostic), primary, "{edge}");
            let string_start = text.find('[').expect("[") + 1;
            let expected_start = if message == "empty edge" { string_start } else { string_start + 1 + offset };
            assert_eq!(diagnostic.primary_span().expect("primary").start as usize, expected_start, "{edge}");
            assert!(diagnostic.notes[0].contains("`\"from -> to\"`"), "{edge}");
            assert!(doc.expect("document").edges.is_empty(), "{edge}");
        }
    }

    #[test]
    fn wrong_arrow_is_reported_and_the_edge_kept() {
        let text = r#"{"edges": ["a => b"]}"#;
        let (doc, diagnostics) = parse(text);
        let diagnostic = only_diagnostic(diagnostics);
        assert_eq!(diagnostic.message, "edges use `->`, not `=>`");
        assert_eq!(primary_text(text, &diagnostic), "=>");
        assert_eq!(diagnostic.help.as_deref(), Some("replace it with `->`"));
        assert_eq!(doc.expect("document").edges.len(), 1);
    }

    #[test]
    fn escaped_edge_strings_point_at_the_whole_string() {
        let text = r#"{"edges": ["a \u002d> b", "a\u0020b"]}"#;
        let (doc, diagnostics) = parse(text);
        let doc = doc.expect("document");
        assert_eq!(slice(text, doc.edges[0].from.span), r#""a \u002d> b""#);
        assert_eq!(primary_text(text, &only_diagnostic(diagnostics)), r#""a\u0020b""#);
    }

    #[test]
    fn top_level_must_be_an_object() {
        let (doc, diagnostics) = parse("[1]");
        assert!(doc.is_none());
        let diagnostic = only_diagnostic(diagnostics);
        assert_eq!(
            (diagnostic.code, diagnostic.message.as_str()),
            (codes::E0103, "a pipeline document must be a JSON object")
        );
    }

    #[test]
    fn section_types() {
        let diagnostics = errors(r#"{"nodes": {}, "edges": "a -> b", "tests": 1}"#);
        let messages: Vec<(&str, &str)> =
            diagnostics.iter().map(|diagnostic| (diagnostic.code.as_str(), diagnostic.message.as_str())).collect();
        assert_eq!(
            messages,
            [
                ("E0103", "`nodes` must be an array of node objects"),
                ("E0103", "`edges` must be an array of strings"),
                ("E0103", "`tests` must be an array of test objects")
            ]
        );
        assert_eq!(diagnostics[0].notes, ["expected an array, found an object"]);
        let diagnostics = errors(r#"{"nodes": [1], "edges": [2]}"#);
        assert_eq!(diagnostics[0].message, "each entry of `nodes` must be a node object");
        assert_eq!(diagnostics[1].message, "each edge must be a string");
    }

    #[test]
    fn node_keys() {
        let text = r#"{"nodes": [
            {"id": "a", "tpye": "filter"},
            {"type": "filter", "topic": "t"},
            {"id": 3, "type": "filter", "name": "x"},
            {"id": "b", "type": ["x"], "config": []}
        ]}"#;
        let (doc, diagnostics) = parse(text);
        let found: Vec<(&str, &str, Option<&str>)> = diagnostics
            .iter()
            .map(|diagnostic| (diagnostic.code.as_str(), diagnostic.message.as_str(), diagnostic.help.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                ("E0101", "unknown key `tpye` in node", Some("did you mean `type`?")),
                (
                    "E0102",
                    "node `a` is missing required key `type`",
                    Some("add the node type, e.g. `\"type\": \"filter\"`")
                ),
                (
                    "E0101",
                    "unknown key `topic` in node",
                    Some(
                        "operator settings go inside the node's `config`: move `\"topic\"` into `\"config\": { ... }`"
                    )
                ),
                (
                    "E0102",
                    "node is missing required key `id`",
                    Some("add `\"id\": \"my_node\"` to the node; the id names the node in edges and keys its state")
                ),
                ("E0103", "node `id` must be a string", None),
                ("E0101", "unknown key `name` in node", Some("the node's identity is its `id`: rename `name` to `id`")),
                ("E0103", "node `type` must be a string", None),
                ("E0103", "node `config` must be an object", None),
            ]
        );
        assert_eq!(slice(text, diagnostics[0].primary_span().expect("primary")), "\"tpye\"");
        assert_eq!(diagnostics[4].notes, ["expected a string, found an integer"]);
        assert!(doc.expect("document").nodes.is_empty());
    }

    #[test]
    fn missing_config_is_an_empty_object_spanning_the_node() {
        let text = r#"{"nodes": [{"id": "a", "type": "filter"}]}"#;
        let doc = document(text);
        assert_eq!(doc.nodes[0].config.kind, ValueKind::Object(Vec::new()));
        assert_eq!(slice(text, doc.nodes[0].config.span), r#"{"id": "a", "type": "filter"}"#);
        assert!(doc.edges_span.is_none());
    }

    #[test]
    fn invalid_node_ids() {
        let text = r#"{"nodes": [{"id": "login.filter", "type": "filter"}, {"id": "", "type": "filter"}]}"#;
        let (doc, diagnostics) = parse(text);
        assert_eq!(diagnostics.len(), 2, "{diagnostics:#?}");
        assert!(diagnostics.iter().all(|diagnostic| diagnostic.code == codes::E0105));
        assert_eq!(diagnostics[0].message, "invalid node id `login.filter`");
        assert_eq!(diagnostics[0].primary_span().expect("primary").start as usize, text.find('.').expect("dot"));
        assert_eq!(primary_text(text, &diagnostics[0]), ".");
        assert_eq!(diagnostics[0].help.as_deref(), Some("rename the node to `login_filter`"));
        assert_eq!(diagnostics[1].message, "node id is empty");
        // The nodes are kept, so edges to them do not cascade into "unknown node" errors.
        assert_eq!(doc.expect("document").nodes.len(), 2);
    }

    #[test]
    fn tests_member() {
        let text = r#"{"tests": [{"name": "welcome", "inputs": [], "expect": {}}, {"inputs": []}, {"name": 1}]}"#;
        let (doc, diagnostics) = parse(text);
        let doc = doc.expect("document");
        assert_eq!(doc.tests.len(), 1);
        assert_eq!(doc.tests[0].name.node, "welcome");
        let body: Vec<&str> =
            doc.tests[0].body.as_object().expect("object").iter().map(|m| m.key.node.as_str()).collect();
        assert_eq!(body, ["inputs", "expect"]);
        assert_eq!(diagnostics.len(), 2);
        assert_eq!(
            (diagnostics[0].code, diagnostics[0].message.as_str()),
            (codes::E0102, "test is missing required key `name`")
        );
        assert_eq!(
            (diagnostics[1].code, diagnostics[1].message.as_str()),
            (codes::E0103, "test `name` must be a string")
        );
        assert!(doc.settings.is_empty());
    }

    #[test]
    fn unknown_top_level_keys_are_settings_for_the_checker() {
        let doc = document(r#"{"name": "x", "nmae": 1, "nodes": [], "schema": {"fields": {}}}"#);
        let settings: Vec<&str> = doc.settings.iter().map(|member| member.key.node.as_str()).collect();
        assert_eq!(settings, ["name", "nmae", "schema"]);
        assert!(doc.nodes_span.is_some());
    }
}

mod json_print {
    use super::*;
    use pulse_syntax::ast::{BinaryOp, DurationLit, Expr, ExprKind, NodeDecl};
    use pulse_syntax::Spanned;

    fn round_trip(text: &str) {
        let (doc, diagnostics) = parse(text);
        assert!(diagnostics.is_empty(), "{diagnostics:#?}");
        let doc = doc.expect("document");
        let printed = print_json_document(&doc);
        let (reparsed, diagnostics) = parse(&printed);
        assert!(diagnostics.is_empty(), "{printed}\n{diagnostics:#?}");
        let reparsed = reparsed.expect("document");
        assert_eq!(strip_document(reparsed.clone()), strip_document(doc), "{printed}");
        assert_eq!(print_json_document(&reparsed), printed, "printing is not idempotent");
    }

    #[test]
    fn seed_round_trips() {
        round_trip(SEED);
    }

    #[test]
    fn seed_prints_readably() {
        let printed = print_json_document(&parse(SEED).0.expect("document"));
        let expected_start = "{\n  \"name\": \"welcome-message-d0\",\n";
        assert!(printed.starts_with(expected_start), "{printed}");
        assert!(printed.contains(
            "\n  \"nodes\": [\n    {\n      \"id\": \"source\",\n      \"type\": \"kafka-source\",\n      \"config\": {\n        \"topic\": \"events\",\n"
        ), "{printed}");
        assert!(
            printed.contains("            { \"field\": \"event_name\", \"equals\": \"login_success\" },\n"),
            "{printed}"
        );
        assert!(printed.ends_with(
            "  \"edges\": [\n    \"source -> login_filter\",\n    \"login_filter -> wait_5min\",\n    \"wait_5min -> send_push\"\n  ]\n}\n"
        ), "{printed}");
    }

    #[test]
    fn odd_values_round_trip() {
        round_trip(
            r#"{"a": [], "b": {}, "c": [1, 2.5, -3e-7, 1e300, "x\"\\\n\u0001é😀", null, true, false, [], {}],
                "d": [[1], {"k": [2]}], "e": 12345678901234567890,
                "nodes": [{"id": "n", "type": "t", "config": {}}, {"id": "m", "type": "t", "config": {"x": {"y": {"z": []}}}}],
                "edges": ["n.out -> m.in", "m -> n"],
                "tests": [{"name": "t1", "inputs": [{"at": "0s", "event": {"a": 1}}], "expect": {"out": []}}]}"#,
        );
        round_trip(r#"{"nodes": [], "edges": []}"#);
        round_trip("{}");
    }

    #[test]
    fn durations_and_expressions_print_as_strings() {
        let span = Span::default();
        let path = |name: &str| Expr { kind: ExprKind::Path(vec![Spanned::new(name.to_string(), span)]), span };
        let condition = Expr {
            kind: ExprKind::Binary {
                op: BinaryOp::Eq,
                op_span: span,
                lhs: Box::new(path("event_name")),
                rhs: Box::new(Expr { kind: ExprKind::Str("login".into()), span }),
            },
            span,
        };
        let config = Value::new(
            ValueKind::Object(vec![
                Member {
                    key: Spanned::new("duration".into(), span),
                    value: Value::new(ValueKind::Duration(DurationLit { millis: 300_000, text: "5m".into() }), span),
                },
                Member { key: Spanned::new("where".into(), span), value: Value::new(ValueKind::Expr(condition), span) },
            ]),
            span,
        );
        let doc = Document {
            file: FILE,
            span,
            settings: Vec::new(),
            nodes: vec![NodeDecl {
                span,
                id: Spanned::new("n".into(), span),
                kind: Spanned::new("delay".into(), span),
                config,
            }],
            edges: Vec::new(),
            nodes_span: None,
            edges_span: None,
            tests: Vec::new(),
            unparsed: Vec::new(),
        };
        let printed = print_json_document(&doc);
        assert!(printed.contains("\"duration\": \"5m\","), "{printed}");
        assert!(printed.contains(r#""where": "event_name == \"login\"""#), "{printed}");
        assert!(!printed.contains("\"edges\""), "{printed}");
        let (reparsed, diagnostics) = parse(&printed);
        assert!(diagnostics.is_empty());
        assert_eq!(member(&reparsed.expect("document").nodes[0].config, "duration").as_str(), Some("5m"));
    }
}

mod json_schema {
    use super::*;

    fn import(text: &str) -> (Option<Value>, Vec<Diagnostic>) {
        json_schema_to_schema(FILE, text)
    }

    /// The schema value printed compactly, for whole-value comparisons.
    fn compact(value: &Value) -> String {
        match &value.kind {
            ValueKind::Object(members) => {
                let inner: Vec<String> =
                    members.iter().map(|member| format!("{}: {}", member.key.node, compact(&member.value))).collect();
                format!("{{{}}}", inner.join(", "))
            }
            ValueKind::String(text) => text.clone(),
            ValueKind::Bool(flag) => flag.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn maps_json_schema_types() {
        let text = r#"{
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "type": "object",
          "properties": {
            "userId": {"type": "string"},
            "ts": {"type": "string", "format": "date-time"},
            "count": {"type": "integer", "minimum": 0},
            "score": {"type": ["number", "null"]},
            "vip": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "meta": {"type": "object"},
            "raw": {"description": "anything"},
            "address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
          },
          "required": ["userId", "ts", "count", "score", "vip", "tags", "meta", "raw"]
        }"#;
        let (schema, diagnostics) = import(text);
        assert!(diagnostics.is_empty(), "{diagnostics:#?}");
        let schema = schema.expect("schema");
        assert_eq!(
            compact(&schema),
            "{fields: {userId: string, ts: timestamp, count: int, score: float?, vip: bool, tags: array, \
             meta: object, raw: any, address: {fields: {city: string}, nullable: true}}}"
        );
        let fields = member(&schema, "fields");
        assert_eq!(slice(text, member(fields, "count").span), r#"{"type": "integer", "minimum": 0}"#);
        assert_eq!(slice(text, fields.as_object().expect("object")[0].key.span), "\"userId\"");
    }

    #[test]
    fn unsupported_constructs_are_e0307() {
        let text = r##"{"type": "object", "properties": {
            "a": {"$ref": "#/$defs/a"},
            "b": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "c": {"type": ["string", "integer"]},
            "d": {"type": "str"},
            "e": {"type": "null"},
            "f": 5
        }, "required": ["a", "userid"]}"##;
        let (schema, diagnostics) = import(text);
        let found: Vec<(&str, &str)> = diagnostics
            .iter()
            .map(|diagnostic| (diagnostic.message.as_str(), primary_text(text, diagnostic)))
            .collect();
        assert_eq!(
            found,
            [
                ("required property `userid` is not in `properties`", "\"userid\""),
                ("unsupported JSON Schema keyword `$ref`", "\"$ref\""),
                ("unsupported JSON Schema keyword `oneOf`", "\"oneOf\""),
                ("union types are not supported", r#"["string", "integer"]"#),
                ("unknown JSON Schema type `str`", "\"str\""),
                ("a property whose only type is `null` is not supported", "\"null\""),
                ("a property schema must be an object", "5"),
            ]
        );
        assert!(diagnostics.iter().all(|diagnostic| diagnostic.code == codes::E0307));
        assert_eq!(diagnostics[4].help.as_deref(), Some("did you mean `string`?"));
        // Unsupported properties are still declared, as `any`, so uses of them do not cascade.
        assert_eq!(
            compact(&schema.expect("schema")),
            "{fields: {a: any, b: any?, c: any?, d: any?, e: any?, f: any?}}"
        );
    }

    #[test]
    fn root_must_be_an_object_schema() {
        let (schema, diagnostics) = import("[]");
        assert!(schema.is_none());
        assert_eq!(only_diagnostic(diagnostics).message, "a JSON Schema document must be an object");
        let (schema, diagnostics) = import(r#"{"type": "array"}"#);
        assert!(schema.is_some());
        assert_eq!(only_diagnostic(diagnostics).message, "the root of an event schema must be an object type");
    }
}

mod json_proptest {
    use super::*;
    use proptest::prelude::*;

    /// Every diagnostic's labels lie within the text and on character boundaries.
    fn check_spans(text: &str, diagnostics: &[Diagnostic]) {
        for diagnostic in diagnostics {
            for label in &diagnostic.labels {
                assert!(label.span.start <= label.span.end, "{diagnostic:?}");
                assert!(text.get(label.span.range()).is_some(), "label off a char boundary: {diagnostic:?}");
            }
        }
    }

    fn check(text: &str) {
        let (_, diagnostics) = read(text);
        check_spans(text, &diagnostics);
        let (doc, diagnostics) = parse(text);
        check_spans(text, &diagnostics);
        if let Some(doc) = doc {
            let _ = print_json_document(&doc);
        }
        let (_, diagnostics) = json_schema_to_schema(FILE, text);
        check_spans(text, &diagnostics);
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_strings(text in any::<String>()) {
            check(&text);
        }

        #[test]
        fn never_panics_on_json_like_strings(text in r#"[\[\]{}",:\\/* a1eE.\-+'\n]{0,40}"#) {
            check(&text);
        }

        #[test]
        fn never_panics_on_mutated_seed(idx in 0..SEED.len(), ch in any::<char>(), delete in any::<bool>()) {
            let idx = (0..=idx).rev().find(|idx| SEED.is_char_boundary(*idx)).unwrap_or(0);
            let mut text = SEED.to_string();
            if delete {
                text.remove(idx);
            } else {
                text.insert(idx, ch);
            }
            check(&text);
        }

        /// A valid document survives printing and reading back.
        #[test]
        fn printing_round_trips_after_deleting_a_node(skip in 0..4usize) {
            let doc = parse(SEED).0.expect("document");
            let mut doc = doc;
            doc.nodes.remove(skip);
            let printed = print_json_document(&doc);
            let (reparsed, diagnostics) = parse(&printed);
            prop_assert!(diagnostics.is_empty());
            prop_assert_eq!(strip_document(reparsed.expect("document")), strip_document(doc));
        }
    }
}

/// Found by the JSON front-end fuzz target: every bare word scanned the rest of its line for a
/// closing quote, so a long line of them took quadratic time (40 KB: two minutes in a debug
/// build; a 100 MB line would never finish). The scan is now shared by the words it passes.
#[test]
fn a_long_line_of_bare_words_is_read_in_linear_time() {
    let words = 200_000;
    for (text, with_quote) in
        [(format!("[{}a]", "a,".repeat(words)), false), (format!("[{}a\"]", "a ".repeat(words)), true)]
    {
        let started = std::time::Instant::now();
        let (_, diagnostics) = read(&text);
        let elapsed = started.elapsed();
        assert!(elapsed < std::time::Duration::from_secs(20), "{} bytes took {elapsed:?}", text.len());
        let opened = diagnostics.iter().any(|diagnostic| diagnostic.message.contains("has no opening quote"));
        assert_eq!(opened, with_quote, "{:?}", diagnostics.first());
    }
}
