//! Property tests: the `.pulse` and expression parsers never panic, on arbitrary input and on
//! single-character mutations of a valid sample; formatting is idempotent on whatever parses;
//! printing generated documents gives `.pulse` that parses back and prints the same.

use proptest::prelude::*;
use pulse_syntax::{format_pulse, parse_expr, parse_pulse_document, print_pulse_document, FileId};

const SAMPLE: &str = r#"// sample
pipeline welcome-message-d0
version "1.0"
runtime { checkpointInterval: 2m }
event { userId: string?, ts: timestamp, props: { show_id: string? }? }
source: kafka-source("events") { groupId: "g" }
split: splitter { route high: score > 10 && userId != null, mode: "all" }
seg: segmentation(1h) by userId {
  counter logins over 7d where event_name == "login"
  segment power: logins >= 10
}
agg: window-aggregate by userId { window sliding 1h every 5m, aggregate n: count() }
m: map { set: { score: score * 2 + 1, tags: ["a", 'b'] } }
source -> login: filter(event_name == "login_success" || x =~ "^a") -> wait: delay(5m) by userId -> split
split {
  high -> m -> send: api-sink("https://x") { body: { u: "{{ userId }}" } }
  default -> seg -> agg
}
"#;

const ALPHABET: &[char] = &[
    '{', '}', '(', ')', '[', ']', ':', ',', '.', '-', '>', '=', '!', '&', '|', '"', '\'', '\\', '/', ' ', '\n', 'a',
    'Z', '_', '0', '9', 'm', 's', '?', '~', '<', '%', '*', '+', 'é',
];

fn check_format(text: &str) {
    if let Ok(once) = format_pulse(FileId(0), text) {
        let twice =
            format_pulse(FileId(0), &once).unwrap_or_else(|d| panic!("formatted text does not parse:\n{once}\n{d:#?}"));
        assert_eq!(twice, once, "not idempotent for input:\n{text}");
        let (before, _) = parse_pulse_document(FileId(0), text);
        let (after, _) = parse_pulse_document(FileId(0), &once);
        if let (Some(before), Some(after)) = (before, after) {
            assert_eq!(print_pulse_document(&before), print_pulse_document(&after), "meaning changed:\n{text}");
        }
    }
}

#[test]
fn sample_is_valid_and_formats_idempotently() {
    let (document, diagnostics) = parse_pulse_document(FileId(0), SAMPLE);
    assert!(diagnostics.is_empty(), "{diagnostics:#?}");
    let document = document.expect("valid");
    assert_eq!(document.nodes.len(), 8);
    assert_eq!(document.edges.len(), 7);
    check_format(SAMPLE);
    let printed = print_pulse_document(&document);
    let (reparsed, diagnostics) = parse_pulse_document(FileId(1), &printed);
    assert!(diagnostics.is_empty(), "{printed}\n{diagnostics:#?}");
    assert_eq!(print_pulse_document(&reparsed.expect("valid")), printed);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = parse_pulse_document(FileId(0), &text);
        let _ = parse_expr(FileId(0), &text, 3);
        check_format(&text);
    }

    #[test]
    fn parsers_never_panic_on_token_soup(chars in proptest::collection::vec(proptest::sample::select(ALPHABET), 0..120)) {
        let text: String = chars.into_iter().collect();
        let _ = parse_pulse_document(FileId(0), &text);
        let _ = parse_expr(FileId(0), &text, 0);
        check_format(&text);
    }

    #[test]
    fn mutations_of_a_valid_sample_never_panic(
        position in 0..SAMPLE.len(),
        replacement in proptest::sample::select(ALPHABET),
        kind in 0..3u8,
    ) {
        let mut text = SAMPLE.to_string();
        let position = (0..=position).rev().find(|idx| text.is_char_boundary(*idx)).unwrap_or(0);
        match kind {
            0 => text.insert(position, replacement),
            1 if position < text.len() => { text.remove(position); }
            _ if position < text.len() => {
                text.remove(position);
                text.insert(position, replacement);
            }
            _ => text.push(replacement),
        }
        let (document, diagnostics) = parse_pulse_document(FileId(0), &text);
        // Either a document or at least one error, never both missing.
        prop_assert!(document.is_some() || diagnostics.iter().any(|d| d.is_error()));
        for diagnostic in &diagnostics {
            if let Some(span) = diagnostic.primary_span() {
                prop_assert!(span.end as usize <= text.len() && span.start <= span.end);
            }
        }
        check_format(&text);
    }

    #[test]
    fn generated_documents_print_and_reparse(
        n_nodes in 1..6usize,
        seed_values in proptest::collection::vec((0..6u8, 0..1000i64, "f_[a-z0-9_]{0,6}"), 6),
    ) {
        // Build a linear pipeline of varied node types from the generated values, print it
        // through a parsed document, and check the printed form is a fixed point.
        let mut text = String::from("pipeline gen\n");
        for (idx, (kind, number, word)) in seed_values.iter().take(n_nodes).enumerate() {
            let decl = match kind {
                0 => format!("n{idx}: filter({word} > {number} && {word} != null)"),
                1 => format!("n{idx}: delay({number}s) by {word}"),
                2 => format!("n{idx}: map {{ set: {{ v_{word}: {word} * {number}, label: \"{word}\" }} }}"),
                3 => format!("n{idx}: dedupe({number}m) by {word}"),
                4 => format!("n{idx}: capping({number}, 1d) by {word}"),
                _ => format!("n{idx}: splitter {{ route r{number}: {word} in [\"{word}\", {number}] }}"),
            };
            text.push_str(&decl);
            text.push('\n');
        }
        let chain: Vec<String> = (0..n_nodes).map(|idx| format!("n{idx}")).collect();
        text.push_str(&format!("src: file-source(\"-\") -> {}\n", chain.join(" -> ")));
        let (document, diagnostics) = parse_pulse_document(FileId(0), &text);
        prop_assert!(diagnostics.is_empty(), "{}\n{:#?}", text, diagnostics);
        let printed = print_pulse_document(&document.expect("valid"));
        let (reparsed, diagnostics) = parse_pulse_document(FileId(0), &printed);
        prop_assert!(diagnostics.is_empty(), "{}\n{:#?}", printed, diagnostics);
        prop_assert_eq!(print_pulse_document(&reparsed.expect("valid")), printed.clone());
        check_format(&text);
        check_format(&printed);
    }
}
