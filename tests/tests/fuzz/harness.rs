//! The fuzzing loop shared by every target: the checked-in corpus, byte-level mutations of it,
//! a deterministic runner with a bounded budget, and the file a failing input is saved to.
//!
//! proptest drives it rather than cargo-fuzz or bolero: it is already a workspace
//! dev-dependency, runs on stable inside `cargo test` with no extra tool or nightly sanitizer
//! runtime, takes an explicit seed (so a CI failure reproduces), and shrinks a failing input
//! before it is saved. The mutations below stand in for a coverage-guided engine's: they splice
//! corpus entries, repeat chunks (floods and deep nesting) and insert tokens that front ends and
//! JSON readers treat specially.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One stored input: its file name (for messages) and bytes.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The entries of `fuzz/corpus/<kind>/`, sorted by name.
pub fn corpus(kind: &str) -> Vec<Entry> {
    let folder = repository().join("fuzz/corpus").join(kind);
    let mut entries = read_folder(&folder, |_| true);
    assert!(!entries.is_empty(), "no corpus in {} (run fuzz/seed.py)", folder.display());
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// Files of `folder` whose names pass `keep`, sorted by name.
pub fn read_folder(folder: &Path, keep: impl Fn(&str) -> bool) -> Vec<Entry> {
    let mut entries: Vec<Entry> = std::fs::read_dir(folder)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", folder.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file() && keep(&path.file_name().expect("file name").to_string_lossy()))
        .map(|path| Entry {
            name: path.file_name().expect("file name").to_string_lossy().into_owned(),
            bytes: std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display())),
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One edit of a byte string. Positions and lengths are reduced modulo the current length, so
/// every edit applies to any input.
#[derive(Clone, Debug)]
enum Mutation {
    SetByte(usize, u8),
    InsertByte(usize, u8),
    Delete(usize, usize),
    InsertToken(usize, usize),
    /// Copies `len` bytes at `from` of seed `seed` to `at`.
    Splice {
        at: usize,
        seed: usize,
        from: usize,
        len: usize,
    },
    /// Repeats the `len` bytes at `at` `times` times: floods and deep nesting.
    Repeat {
        at: usize,
        len: usize,
        times: usize,
    },
    Truncate(usize),
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation, seeds: &[Entry], tokens: &[&[u8]]) {
    let position = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
    match *mutation {
        Mutation::SetByte(at, byte) if !bytes.is_empty() => {
            let index = at % bytes.len();
            bytes[index] = byte;
        }
        Mutation::SetByte(..) => bytes.push(0),
        Mutation::InsertByte(at, byte) => bytes.insert(position(at, bytes.len()), byte),
        Mutation::Delete(at, len) if !bytes.is_empty() => {
            let start = at % bytes.len();
            let end = (start + 1 + len % 16).min(bytes.len());
            bytes.drain(start..end);
        }
        Mutation::Delete(..) => {}
        Mutation::InsertToken(at, token) => {
            let at = position(at, bytes.len());
            bytes.splice(at..at, tokens[token % tokens.len()].iter().copied());
        }
        Mutation::Splice { at, seed, from, len } => {
            let source = &seeds[seed % seeds.len()].bytes;
            if !source.is_empty() {
                let start = from % source.len();
                let end = (start + 1 + len % 256).min(source.len());
                let at = position(at, bytes.len());
                bytes.splice(at..at, source[start..end].iter().copied());
            }
        }
        Mutation::Repeat { at, len, times } if !bytes.is_empty() => {
            let start = at % bytes.len();
            let end = (start + 1 + len % 8).min(bytes.len());
            let chunk = bytes[start..end].to_vec();
            // Up to 2,000 copies: deep enough to cross every nesting limit, small enough to stay fast.
            let copies = 1 + times % 2_000;
            let tail = bytes.split_off(end);
            for _ in 0..copies {
                bytes.extend_from_slice(&chunk);
            }
            bytes.extend_from_slice(&tail);
        }
        Mutation::Repeat { .. } => {}
        Mutation::Truncate(at) => {
            let keep = position(at, bytes.len());
            bytes.truncate(keep);
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte(at, byte)),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::InsertByte(at, byte)),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(at, len)| Mutation::Delete(at, len)),
        4 => (any::<usize>(), any::<usize>()).prop_map(|(at, token)| Mutation::InsertToken(at, token)),
        2 => (any::<usize>(), any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(at, seed, from, len)| Mutation::Splice { at, seed, from, len }),
        1 => (any::<usize>(), any::<usize>(), any::<usize>()).prop_map(|(at, len, times)| Mutation::Repeat { at, len, times }),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// Inputs: a corpus entry with one to eight mutations, or (one time in ten) arbitrary bytes.
pub fn inputs(seeds: Arc<Vec<Entry>>, tokens: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    let mutated = (any::<usize>(), prop::collection::vec(mutation(), 1..8)).prop_map(move |(pick, mutations)| {
        let mut bytes = seeds[pick % seeds.len()].bytes.clone();
        for mutation in &mutations {
            apply(&mut bytes, mutation, &seeds, tokens);
        }
        bytes
    });
    prop_oneof![9 => mutated, 1 => prop::collection::vec(any::<u8>(), 0..512)]
}

/// How long a run may be: a fixed number of mutated inputs (CI), or a time budget.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    Iterations(u32),
    Seconds(u64),
}

impl Budget {
    /// `PULSE_FUZZ_SECONDS` (per target) wins over `PULSE_FUZZ_ITERATIONS`; without either,
    /// `default_iterations`, sized so that all targets together stay within about a minute in a
    /// debug build on two cores.
    pub fn from_env(default_iterations: u32) -> Budget {
        let number = |name: &str| {
            std::env::var(name).ok().map(|text| {
                text.trim().parse::<u64>().unwrap_or_else(|_| panic!("{name} must be a whole number, not {text:?}"))
            })
        };
        match (number("PULSE_FUZZ_SECONDS"), number("PULSE_FUZZ_ITERATIONS")) {
            (Some(seconds), _) => Budget::Seconds(seconds),
            (None, Some(iterations)) => Budget::Iterations(u32::try_from(iterations).unwrap_or(u32::MAX)),
            (None, None) => Budget::Iterations(default_iterations),
        }
    }
}

/// The base seed: `PULSE_FUZZ_SEED`, or a fixed one so CI runs are reproducible.
fn base_seed() -> u64 {
    std::env::var("PULSE_FUZZ_SEED")
        .ok()
        .map(|text| text.trim().parse().unwrap_or_else(|_| panic!("PULSE_FUZZ_SEED must be a number, not {text:?}")))
        .unwrap_or(0x9e37_79b9_7f4a_7c15)
}

/// An input slower than this is reported as a failure: quadratic blow-ups are bugs too. It is
/// generous because debug builds on a loaded machine are slow.
const SLOW_INPUT: Duration = Duration::from_secs(10);

/// Checks `property` on every corpus entry as stored, then on mutated inputs until the budget
/// is spent. A failing input is shrunk, saved under `target/fuzz-failures/` and named in the
/// panic message so it can be added to the corpus. Runs on a thread with a main thread's 8 MiB
/// stack, the stack `pulsec` itself has.
pub fn run(
    target: &'static str,
    seeds: Vec<Entry>,
    tokens: &'static [&'static [u8]],
    default_iterations: u32,
    property: fn(&[u8]) -> Result<(), String>,
) {
    let worker = std::thread::Builder::new()
        .name(format!("fuzz-{target}"))
        .stack_size(8 << 20)
        .spawn(move || run_on_this_thread(target, seeds, tokens, default_iterations, property))
        .expect("spawn the fuzz thread");
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
}

fn run_on_this_thread(
    target: &'static str,
    seeds: Vec<Entry>,
    tokens: &'static [&'static [u8]],
    default_iterations: u32,
    property: fn(&[u8]) -> Result<(), String>,
) {
    let checked = move |bytes: &[u8]| -> Result<(), String> {
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(|| property(bytes))
            .unwrap_or_else(|panic| Err(format!("panicked: {}", panic_message(&panic))))
            .map_err(|reason| shortened(&reason, 1_500));
        let elapsed = started.elapsed();
        match outcome {
            Ok(()) if elapsed > SLOW_INPUT => Err(format!("took {elapsed:?} (more than {SLOW_INPUT:?})")),
            other => other,
        }
    };
    for entry in &seeds {
        if let Err(reason) = checked(&entry.bytes) {
            panic!("fuzz target `{target}` fails on corpus entry `{}`: {reason}", entry.name);
        }
    }
    let budget = Budget::from_env(default_iterations);
    let seeds = Arc::new(seeds);
    let started = Instant::now();
    let mut cases = 0u64;
    for batch in 0u64.. {
        let batch_cases = match budget {
            Budget::Iterations(total) if u64::from(total) <= cases => break,
            Budget::Iterations(total) => (u64::from(total) - cases).min(1_000) as u32,
            Budget::Seconds(seconds) if started.elapsed() >= Duration::from_secs(seconds) => break,
            Budget::Seconds(_) => 200,
        };
        let seed = base_seed().wrapping_add(batch.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut seed_bytes = [0u8; 32];
        for (index, chunk) in seed_bytes.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&seed.rotate_left(index as u32 * 16).to_le_bytes());
        }
        let config =
            Config { cases: batch_cases, failure_persistence: None, max_shrink_iters: 4_096, ..Config::default() };
        let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
        let outcome =
            runner.run(&inputs(Arc::clone(&seeds), tokens), |bytes| checked(&bytes).map_err(TestCaseError::fail));
        cases += u64::from(batch_cases);
        match outcome {
            Ok(()) => {}
            Err(TestError::Fail(reason, bytes)) => {
                let saved = save_failure(target, &bytes);
                panic!(
                    "fuzz target `{target}` fails (PULSE_FUZZ_SEED={}, batch {batch}): {reason}\n\
                     input ({} bytes) saved to {}; add it to fuzz/corpus/ as `found-...` once fixed\n\
                     input: {:?}",
                    base_seed(),
                    bytes.len(),
                    saved.display(),
                    shortened(&String::from_utf8_lossy(&bytes), 2_000),
                );
            }
            Err(TestError::Abort(reason)) => panic!("fuzz target `{target}` aborted: {reason}"),
        }
    }
    eprintln!(
        "fuzz target `{target}`: {} corpus entries and {cases} mutated inputs in {:.1?}",
        seeds.len(),
        started.elapsed()
    );
}

/// `text` cut to about `limit` bytes (at a character boundary), so a message quoting a large
/// input stays readable.
fn shortened(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &text[..end], text.len())
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic>".to_string())
}

/// Writes a failing input to `target/fuzz-failures/<target>-<hash>` and returns the path.
fn save_failure(target: &str, bytes: &[u8]) -> PathBuf {
    let folder = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let hash = bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3));
    let path = folder.join(format!("{target}-{hash:016x}"));
    if let Err(error) = std::fs::create_dir_all(&folder).and_then(|()| std::fs::write(&path, bytes)) {
        eprintln!("cannot save the failing input to {}: {error}", path.display());
    }
    path
}
