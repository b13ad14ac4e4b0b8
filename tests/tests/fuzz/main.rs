//! Fuzz targets that run on stable inside `cargo test` for a bounded time: the `.pulse` front
//! end, the JSON front end, and the event decoder of a generated binary. Each replays the
//! checked-in corpus (`fuzz/corpus/`), then mutates it with a fixed seed. `fuzz/README.md` says
//! how to run them longer and how to add a failing input to the corpus.

mod events;
mod front_end;
mod harness;

#[test]
fn fuzz_pulse_front_end() {
    harness::run(
        "pulse",
        front_end::seeds("pulse", "pulse"),
        front_end::PULSE_TOKENS,
        front_end::PULSE_ITERATIONS,
        front_end::pulse_property,
    );
}

#[test]
fn fuzz_json_front_end() {
    harness::run(
        "json",
        front_end::seeds("json", "json"),
        front_end::JSON_TOKENS,
        front_end::JSON_ITERATIONS,
        front_end::json_property,
    );
}

#[test]
fn fuzz_event_decoder() {
    harness::run("events", harness::corpus("events"), events::TOKENS, events::ITERATIONS, events::property);
}

/// `pulsec check` reads a file as UTF-8 before a front end sees it; a file that is not UTF-8 is
/// refused with a coded diagnostic.
#[test]
fn invalid_utf8_is_refused_with_a_code() {
    for kind in ["pulse", "json"] {
        let entries = harness::corpus(kind);
        let invalid: Vec<_> = entries.iter().filter(|entry| std::str::from_utf8(&entry.bytes).is_err()).collect();
        assert!(!invalid.is_empty(), "the {kind} corpus has no invalid UTF-8");
        let folder = tempfile::tempdir().expect("temporary directory");
        for entry in invalid {
            let path = folder.path().join(&entry.name);
            std::fs::write(&path, &entry.bytes).expect("write the input");
            let diagnostic = match pulsec::load::load_file(&path) {
                Err(diagnostic) => diagnostic,
                Ok(loaded) => panic!("{}: read as {} diagnostics", entry.name, loaded.diagnostics.len()),
            };
            assert_eq!(diagnostic.code, pulse_syntax::codes::E0902, "{}: {}", entry.name, diagnostic.message);
        }
    }
}
