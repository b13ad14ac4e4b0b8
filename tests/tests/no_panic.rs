//! No input may panic the compiler: random edits of every example, in both forms, go through
//! parsing, checking and code generation, and must come back as diagnostics or a pipeline.

use proptest::prelude::*;
use pulsec::load::load_text;
use std::path::Path;

fn sources() -> Vec<(String, String)> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(examples).expect("examples/ exists") {
        let dir = entry.expect("entry").path();
        for name in ["pipeline.pulse", "pipeline.json"] {
            if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
                sources.push((name.to_string(), text));
            }
        }
    }
    sources.sort();
    sources
}

/// Compiles as far as the input allows; a panic anywhere fails the property.
fn compile(name: &str, text: String) {
    let loaded = load_text(name, text, &|_| Err(std::io::ErrorKind::NotFound.into()));
    let rendered = pulsec::render::human(&loaded.sources, &loaded.diagnostics, false);
    let _ = pulsec::render::json(&loaded.sources, &loaded.diagnostics);
    match &loaded.pipeline {
        Some(pipeline) => {
            assert!(!loaded.has_errors(), "a pipeline came with errors:\n{rendered}");
            let _ = pulsec::native::generate(pipeline, name);
        }
        None => assert!(loaded.has_errors(), "no pipeline and no error for {name}"),
    }
}

#[derive(Clone, Debug)]
enum Edit {
    Delete(usize),
    Insert(usize, char),
    Replace(usize, char),
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        if chars.is_empty() {
            break;
        }
        match *edit {
            Edit::Delete(at) => {
                chars.remove(at % chars.len());
            }
            Edit::Insert(at, ch) => chars.insert(at % (chars.len() + 1), ch),
            Edit::Replace(at, ch) => {
                let idx = at % chars.len();
                chars[idx] = ch;
            }
        }
    }
    chars.into_iter().collect()
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop_oneof![
        Just('{'),
        Just('}'),
        Just('['),
        Just(']'),
        Just('"'),
        Just(','),
        Just(':'),
        Just('.'),
        Just('-'),
        Just('>'),
        Just('='),
        Just('!'),
        Just('|'),
        Just('&'),
        Just('\n'),
        Just(' '),
        Just('0'),
        Just('5'),
        Just('m'),
        Just('é'),
        any::<char>(),
    ];
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), interesting.clone()).prop_map(|(at, ch)| Edit::Insert(at, ch)),
        (any::<usize>(), interesting).prop_map(|(at, ch)| Edit::Replace(at, ch)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn edited_examples_never_panic(pick in any::<usize>(), edits in prop::collection::vec(edit(), 1..4)) {
        let sources = sources();
        let (name, text) = &sources[pick % sources.len()];
        compile(name, apply(text, &edits));
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}", json in any::<bool>()) {
        compile(if json { "any.json" } else { "any.pulse" }, text);
    }
}

#[test]
fn every_example_compiles_unedited() {
    for (name, text) in sources() {
        let loaded = load_text(&name, text, &|_| Err(std::io::ErrorKind::NotFound.into()));
        assert!(loaded.pipeline.is_some(), "{name}: {:?}", loaded.diagnostics);
    }
}
