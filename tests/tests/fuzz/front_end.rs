//! Targets for the two front ends. Each input goes through `load_text`, the entry point of
//! `pulsec check`, and must come back as a pipeline or as coded diagnostics whose labels point
//! into the source, that render without a panic to text bounded by the input's size; a pipeline
//! must also pass code generation (without rustc).

use crate::harness::{self, Entry};
use pulse_syntax::codes::Code;
use pulsec::load::load_text;

/// Mutated inputs per front end in CI mode. JSON inputs cost more: mutated floods give tens of
/// thousands of diagnostics, each rendered for `--message-format json`.
pub const PULSE_ITERATIONS: u32 = 3_000;
pub const JSON_ITERATIONS: u32 = 2_000;

/// Rendered text may grow with the input, but only linearly: each of the at most
/// `MAX_SHOWN_PER_FILE` drawn diagnostics shows a line of at most 300 bytes and short messages.
const RENDERED_BASE: usize = 64 * 1024;
const RENDERED_PER_INPUT_BYTE: usize = 8;

/// Tokens that either front end treats specially, and the bad inputs of "Never silently wrong".
pub const PULSE_TOKENS: &[&[u8]] = &[
    b"!",
    b"(",
    b")",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"=",
    b"==",
    b"!=",
    b"->",
    b"&&",
    b"||",
    b",",
    b":",
    b".",
    b"..",
    b"{{",
    b"}}",
    b"[[",
    b"]]",
    b"//",
    b"/*",
    b"*/",
    b"\\",
    b"\\u{2028}",
    b"\\n",
    b"\n",
    b" ",
    b"\t",
    b"\r\n",
    b"\0",
    "\u{feff}".as_bytes(),
    "\u{2028}".as_bytes(),
    "é".as_bytes(),
    b"\xff",
    b"\xe2\x80",
    b"0",
    b"-1",
    b"5m",
    b"1e999",
    b"99999999999999999999",
    b"9223372036854775807d",
    b"0.000001s",
    b"\"9999-12-31T23:59:59Z\"",
    b"null",
    b"true",
    b" in ",
    b" by ",
    b" over ",
    b" where ",
    b"filter(",
    b"delay(5m)",
    b"map {",
    b"stdout-sink",
    b"file-source(\"e.jsonl\")",
    b"kafka-source(\"t\")",
    b"event {",
    b"pipeline ",
    b"version ",
    b"runtime {",
    b"x: string?",
    b"ts: timestamp",
];

pub const JSON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"=",
    b"\\",
    b"\\u0000",
    b"\\u2028",
    b"\\ud800",
    b"\\udc00",
    b"\\n",
    b"\n",
    b" ",
    b"\0",
    "\u{feff}".as_bytes(),
    "\u{2028}".as_bytes(),
    b"\xff",
    b"\xe2\x80",
    b"0",
    b"-0",
    b"1e999",
    b"-1e999",
    b"1.5",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"null",
    b"true",
    b"\"9999-12-31T23:59:59Z\"",
    b"\"..\"",
    b"\"{{ .. }}\"",
    b"\"id\": ",
    b"\"type\": ",
    b"\"config\": ",
    b"\"nodes\": [",
    b"\"edges\": [",
    b"\"a -> b\"",
    b"\"where\": ",
    b"{\"not\": ",
    b"\"name\": ",
    b"\"version\": ",
    b"\"filter\"",
    b"\"delay\"",
    b"\"file-source\"",
    b"\"stdout-sink\"",
];

/// The corpus of one form, with the diagnostic UI cases of that form as further seeds.
pub fn seeds(kind: &str, extension: &str) -> Vec<Entry> {
    let mut seeds = harness::corpus(kind);
    let suffix = format!(".{extension}");
    seeds.extend(harness::read_folder(&harness::repository().join("tests/ui"), |name| name.ends_with(&suffix)));
    seeds
}

pub fn pulse_property(bytes: &[u8]) -> Result<(), String> {
    compile("fuzz.pulse", bytes)
}

pub fn json_property(bytes: &[u8]) -> Result<(), String> {
    compile("fuzz.json", bytes)
}

/// The front-end checks of one input. `pulsec check` refuses a file that is not UTF-8 before
/// any front end sees it (see `invalid_utf8_is_refused_with_a_code`), so such bytes are fed as
/// their lossy text, which still exercises the replacement character.
fn compile(name: &str, bytes: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let input_len = text.len();
    let loaded = load_text(name, text, &|_| Err(std::io::ErrorKind::NotFound.into()));
    for diagnostic in &loaded.diagnostics {
        if Code::lookup(diagnostic.code.as_str()) != Some(diagnostic.code) {
            return Err(format!("diagnostic with unregistered code `{}`: {}", diagnostic.code, diagnostic.message));
        }
        for label in &diagnostic.labels {
            let text = &loaded.sources.get(label.span.file).text;
            let range = label.span.range();
            if range.start > range.end || text.get(range.clone()).is_none() {
                return Err(format!(
                    "{} `{}`: label {range:?} is outside the source or splits a character ({} bytes)",
                    diagnostic.code,
                    diagnostic.message,
                    text.len()
                ));
            }
        }
    }
    let rendered = pulsec::render::human(&loaded.sources, &loaded.diagnostics, false);
    let limit = RENDERED_BASE + RENDERED_PER_INPUT_BYTE * input_len;
    if rendered.len() > limit {
        return Err(format!(
            "rendered diagnostics are {} bytes for a {input_len}-byte input (limit {limit})",
            rendered.len()
        ));
    }
    let _ = pulsec::render::json(&loaded.sources, &loaded.diagnostics);
    match (&loaded.pipeline, loaded.has_errors()) {
        (Some(_), true) => Err(format!("a pipeline came with errors:\n{rendered}")),
        (None, false) => Err(format!("no pipeline and no error:\n{rendered}")),
        (Some(pipeline), false) => match pulsec::native::generate(pipeline, name) {
            Ok(_) => Ok(()),
            Err(diagnostics) => Err(format!(
                "checked pipeline fails code generation:\n{}",
                pulsec::render::human(&loaded.sources, &diagnostics, false)
            )),
        },
        (None, true) => Ok(()),
    }
}
