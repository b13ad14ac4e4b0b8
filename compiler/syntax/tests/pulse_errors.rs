//! Diagnostics of the `.pulse` front end: every code it emits, with message, primary span and
//! help, and all errors of a file reported in one run.

use pulse_syntax::codes;
use pulse_syntax::{parse_pulse_document, Diagnostic, FileId};

fn errors(text: &str) -> Vec<Diagnostic> {
    let (document, diagnostics) = parse_pulse_document(FileId(0), text);
    assert!(document.is_some(), "a file with errors still gives the document of what parsed");
    assert!(!diagnostics.is_empty());
    diagnostics
}

/// The text under the primary label.
fn primary<'a>(text: &'a str, diagnostic: &Diagnostic) -> &'a str {
    &text[diagnostic.primary_span().expect("a primary label").range()]
}

fn only(text: &str) -> Diagnostic {
    let diagnostics = errors(text);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    diagnostics.into_iter().next().expect("one diagnostic")
}

#[test]
fn missing_colon_after_field_name() {
    let text = "event {\n  userId string\n}\n";
    let diagnostic = only(text);
    assert_eq!(diagnostic.code, codes::E0002);
    assert_eq!(diagnostic.message, "expected `:` after `userId`, found `string`");
    assert_eq!(primary(text, &diagnostic), "string");
    assert_eq!(diagnostic.help.as_deref(), Some("write `userId: ...`"));
}

#[test]
fn equals_sign_for_colon_in_a_block() {
    let text = "src: kafka-source { topic = \"events\" }\n";
    let diagnostic = only(text);
    assert_eq!(diagnostic.code, codes::E0002);
    assert_eq!(diagnostic.message, "expected `:` between a key and its value");
    assert_eq!(primary(text, &diagnostic), "=");
    assert_eq!(diagnostic.help.as_deref(), Some("write `topic: value`"));
}

#[test]
fn keyword_with_colon() {
    let text = "version: \"1.0\"\n";
    let diagnostic = only(text);
    assert_eq!(diagnostic.message, "unexpected `:` after `version`");
    assert_eq!(primary(text, &diagnostic), ":");
    assert_eq!(diagnostic.help.as_deref(), Some("write `version \"1.0\"`"));
}

#[test]
fn assignment_for_comparison_is_e0005() {
    let text = "f: filter(event_name = \"login\")\n";
    let diagnostic = only(text);
    assert_eq!(diagnostic.code, codes::E0005);
    assert_eq!(diagnostic.message, "`=` is not a comparison operator");
    assert_eq!(primary(text, &diagnostic), "=");
    assert_eq!(diagnostic.help.as_deref(), Some("use `==` to compare values"));
}

#[test]
fn sql_keywords_are_e0006() {
    let text = "f: filter(a == 1 AND b <> 2 or NOT c)\n";
    let diagnostics = errors(text);
    let found: Vec<_> =
        diagnostics.iter().map(|d| (d.code, primary(text, d), d.help.clone().unwrap_or_default())).collect();
    assert_eq!(
        found,
        [
            (codes::E0006, "AND", "use `&&` instead of `AND`".to_string()),
            (codes::E0006, "<>", "use `!=` instead of `<>`".to_string()),
            (codes::E0006, "or", "use `||` instead of `or`".to_string()),
            (codes::E0006, "NOT", "use `!` instead of `NOT`".to_string()),
        ]
    );
    assert_eq!(diagnostics[0].message, "`AND` is not an operator in Pulse expressions");
}

#[test]
fn invalid_durations_are_e0501_with_a_suggestion() {
    let cases = [
        ("1h30m", "write `90m`"),
        ("5 m", "write `5m`"),
        ("1.5h", "write `90m`"),
        ("2w", "write `14d`"),
        ("10 minutes", "write `10m`"),
    ];
    for (duration, suggestion) in cases {
        let text = format!("d: delay({duration})\n");
        let diagnostic = only(&text);
        assert_eq!(diagnostic.code, codes::E0501, "{duration}");
        assert_eq!(diagnostic.message, format!("invalid duration `{duration}`"));
        assert_eq!(primary(&text, &diagnostic), duration);
        let help = diagnostic.help.expect("help");
        assert!(help.starts_with(suggestion), "{help}");
        assert!(help.contains("`ms`, `s`, `m`, `h` or `d`"), "{help}");
    }
}

#[test]
fn chained_comparison() {
    let text = "f: filter(a < b < c)\n";
    let diagnostic = only(text);
    assert_eq!(diagnostic.code, codes::E0002);
    assert_eq!(diagnostic.message, "comparison operators cannot be chained");
    assert_eq!(primary(text, &diagnostic), "<");
    assert_eq!(text.find("< c"), diagnostic.primary_span().map(|span| span.start as usize));
}

#[test]
fn unclosed_brace_is_reported_and_later_items_still_parse() {
    let text = "x: map { set: { a: 1 }\ny: filter(a == b == c)\nz: filter(a.)\n";
    let diagnostics = errors(text);
    let messages: Vec<_> = diagnostics.iter().map(|d| (d.message.as_str(), primary(text, d))).collect();
    assert_eq!(
        messages,
        [
            ("unclosed `{`", "{"),
            ("comparison operators cannot be chained", "=="),
            ("expected a field name after `.`, found `)`", ")"),
        ]
    );
    assert_eq!(diagnostics[0].primary_span().map(|span| span.start), Some(7));
}

#[test]
fn the_document_holds_what_parsed_and_lists_what_did_not() {
    let text = "pipeline p\nevent { userId: string\nsrc: file-source(\"in\")\n\
                src -> f: filter { where: userId != null -> out: stdout-sink\nok: filter(userId == \"a\")\nsrc -> ok -> out\n";
    let (document, diagnostics) = parse_pulse_document(FileId(0), text);
    assert_eq!(diagnostics.len(), 2, "{diagnostics:#?}");
    let document = document.expect("a document of what parsed");
    let ids: Vec<&str> = document.nodes.iter().map(|node| node.id.node.as_str()).collect();
    assert_eq!(ids, ["src", "ok"]);
    assert!(document.is_partial());
    assert_eq!(document.unparsed.len(), 2);
    assert!(document.unparsed_setting("schema"), "the broken `event` block still declares a schema");
    assert!(!document.unparsed_setting("name"));
    let broken: Vec<(&str, Option<&str>)> =
        document.unparsed_nodes().map(|node| (node.id.node.as_str(), node.kind.as_deref())).collect();
    assert_eq!(broken, [("f", Some("filter")), ("out", Some("stdout-sink"))], "declared at the start or after `->`");
    assert_eq!(&text[document.unparsed[1].nodes[1].id.span.range()], "out");
    assert!(document.unparsed_mentions("src"));
    assert!(!document.unparsed_mentions("ok"));
}

#[test]
fn every_bad_item_is_reported_in_one_run() {
    let text = "pipeline demo\nevent {\n  userId string\n}\nsrc: kafka-source { topic = \"t\" }\nf: filter(x = 1)\nd: delay(1h30m)\nlonely\nsrc -> f -> d\n";
    let codes_found: Vec<_> = errors(text).iter().map(|d| d.code).collect();
    assert_eq!(codes_found, [codes::E0002, codes::E0002, codes::E0005, codes::E0501, codes::E0002]);
}

#[test]
fn unterminated_string() {
    let text = "d: kafka-source { topic: \"events }\n";
    let diagnostic = only(text);
    assert_eq!(diagnostic.message, "unterminated string");
    assert_eq!(primary(text, &diagnostic), "\"events }");
}

#[test]
fn bad_escape_in_string() {
    let text = "d: kafka-source { topic: \"a\\qb\" }\n";
    let diagnostic = only(text);
    assert_eq!(diagnostic.code, codes::E0002);
    assert_eq!(diagnostic.message, "unknown escape `\\q` in string");
    assert_eq!(primary(text, &diagnostic), "\\q");
}

#[test]
fn entries_on_one_line_need_a_comma() {
    let text = "k: kafka-source { topic: \"t\" brokers: \"b\" }\n";
    let diagnostic = only(text);
    assert_eq!(diagnostic.message, "expected `,` or a new line before this entry");
    assert_eq!(primary(text, &diagnostic), "brokers: \"b\"");
}

#[test]
fn lone_node_id() {
    let text = "lonely\n";
    let diagnostic = only(text);
    assert_eq!(diagnostic.message, "expected `:` or `->` after `lonely`");
    assert_eq!(primary(text, &diagnostic), "lonely");
}

#[test]
fn port_in_the_middle_of_a_chain() {
    let text = "a -> b.in -> c\n";
    let diagnostic = only(text);
    assert_eq!(diagnostic.message, "port `in` in the middle of a chain is ambiguous");
    assert_eq!(primary(text, &diagnostic), "in");
}

#[test]
fn wrong_shorthand_arity_and_unknown_shorthand() {
    let text = "c: capping(3) by u\nm: map(x)\n";
    let diagnostics = errors(text);
    assert_eq!(diagnostics.len(), 2);
    assert_eq!(diagnostics[0].message, "`capping` takes 2 arguments in parentheses, found 1");
    assert_eq!(diagnostics[0].help.as_deref(), Some("write `capping(MAX, WINDOW)` and put other options in `{ ... }`"));
    assert_eq!(diagnostics[1].message, "`map` has no shorthand arguments");
    assert_eq!(primary(text, &diagnostics[1]), "(x)");
}

#[test]
fn duplicate_keys_and_settings() {
    let text = "pipeline a\npipeline b\nd: delay(5m) { duration: 1m }\ns: splitter { routes: [], route a: x }\n";
    let messages: Vec<_> = errors(text).into_iter().map(|d| d.message).collect();
    assert_eq!(
        messages,
        ["`name` is declared twice", "`duration` is set twice", "`route` entries and a `routes` key both set `routes`"]
    );
}

#[test]
fn integer_too_large_is_e0109() {
    let text = "c: capping(99999999999999999999, 1d) by u\n";
    let diagnostic = only(text);
    assert_eq!(diagnostic.code, codes::E0109);
    assert_eq!(primary(text, &diagnostic), "99999999999999999999");
}

#[test]
fn stray_text_before_the_first_item() {
    let text = "  indented: filter(x)\n";
    let diagnostic = only(text);
    assert_eq!(diagnostic.message, "expected a top-level item");
}

#[test]
fn deep_nesting_is_rejected_without_overflow() {
    let text = format!("f: filter({}x{})\n", "(".repeat(5000), ")".repeat(5000));
    let diagnostic = only(&text);
    assert_eq!(diagnostic.message, "brackets are nested too deeply");
}
