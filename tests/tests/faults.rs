//! Faults an operator meets, each with what Pulse must do: continue exactly (the output of an
//! uninterrupted run) or refuse clearly (exit 2 and a message that says what differs), never
//! exit 0 with wrong output. Wrong resumes: another spelling of the output directory, another
//! output directory, another pipeline's state directory, a different, shorter or longer input.
//! Hostile input: an event dated in the year 9999 (watermark poisoning), a line longer than the
//! line limit. Damage: every kind of state-directory damage, a truncated output, a full disk.
//! (SIGKILLs at random points with poison lines are `checkpoint_kill.rs`; sink outages with
//! metrics scraped during them are `redis_sink.rs` and `api_sink.rs`.)

mod build;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A keyed delay and a filter over searches: state, timers and two outputs.
const PIPELINE: &str = r#"
pipeline NAME

event {
  userId: string?
  query: string
  ts: timestamp
}

searches: file-source("searches.jsonl") {
  eventTime: ts
  maxOutOfOrderness: 1s
}

settle: delay(2s) by userId {
  mode: "latest"
}

long_queries: filter(len(query) > 12)

final_query: stdout-sink
long: stdout-sink

searches -> settle -> final_query
searches -> long_queries -> long
"#;

fn binary(name: &str) -> PathBuf {
    build::build_text(&format!("{name}.pulse"), &PIPELINE.replace("NAME", name), None)
}

/// The same pipeline on the memory backend.
fn memory_binary(name: &str) -> PathBuf {
    let text = PIPELINE.replace("NAME", &format!("{name}\nruntime {{ stateBackend: \"memory\" }}"));
    build::build_text(&format!("{name}.pulse"), &text, None)
}

/// `lines` searches of 500 users in time order, one not JSON.
fn searches(lines: usize) -> String {
    (0..lines)
        .map(|n| match n {
            7 => "not json\n".to_string(),
            _ => format!(
                "{{\"userId\":\"u{}\",\"query\":\"query number {n}\",\"ts\":{}}}\n",
                n * 7 % 500,
                1_700_000_000_000u64 + n as u64 * 50
            ),
        })
        .collect()
}

fn run(binary: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(binary).current_dir(dir).arg("run").args(args).arg("--quiet").output().expect("binary runs")
}

fn ok(output: Output) -> Output {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// Exit 2 with a message containing every one of `says`.
fn refused(output: Output, says: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "expected a refusal, got {}: {stderr}", output.status);
    for part in says {
        assert!(stderr.contains(part), "the refusal should say `{part}`: {stderr}");
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Every output file of `dir`, by name.
fn outputs(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("output directory")
        .map(|entry| {
            let path = entry.expect("entry").path();
            (path.file_name().expect("name").to_string_lossy().into_owned(), read(&path))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn wrong_resumes_are_refused_and_a_respelt_output_directory_resumes_exactly() {
    let journey = binary("faults-journey");
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    std::fs::write(dir.join("searches.jsonl"), searches(3000)).expect("input");
    ok(run(&journey, dir, &["--input", "searches.jsonl", "--output", "reference"]));
    let reference = outputs(&dir.join("reference"));
    assert!(reference.iter().all(|(_, text)| !text.is_empty()), "every output has records");

    // Stopped after 1000 records with a checkpoint, as if killed; resumed with `./out`, then
    // with the absolute path: the output is the uninterrupted run's.
    let first = ["--input", "searches.jsonl", "--state-dir", "state", "--checkpoint-interval", "10ms"];
    ok(run(&journey, dir, &[&first[..], &["--output", "out", "--stop-after", "1000"]].concat()));
    ok(run(&journey, dir, &[&first[..], &["--output", "./out", "--stop-after", "2000"]].concat()));
    let absolute = dir.join("out").display().to_string();
    ok(run(&journey, dir, &[&first[..], &["--output", &absolute]].concat()));
    assert_eq!(outputs(&dir.join("out")), reference);

    // Another output directory, or none: refused before anything is written.
    ok(run(
        &journey,
        dir,
        &["--input", "searches.jsonl", "--state-dir", "s2", "--output", "o2", "--stop-after", "500"],
    ));
    let o2 = outputs(&dir.join("o2"));
    refused(
        run(&journey, dir, &["--input", "searches.jsonl", "--state-dir", "s2", "--output", "elsewhere"]),
        &["wrote committed output to", "o2/", "elsewhere", "new --state-dir"],
    );
    assert!(!dir.join("elsewhere").exists(), "nothing is created for a refused resume");
    refused(run(&journey, dir, &["--input", "searches.jsonl", "--state-dir", "s2"]), &["writes no output file"]);
    assert_eq!(outputs(&dir.join("o2")), o2, "a refused resume leaves the committed output alone");

    // A different input (one record edited), a shorter one: refused. A longer one (appended
    // to) is the same input grown: accepted.
    let text = searches(3000);
    std::fs::write(dir.join("edited.jsonl"), text.replacen("query number 3\"", "query number 4\"", 1)).expect("edit");
    refused(
        run(&journey, dir, &["--input", "edited.jsonl", "--state-dir", "s2", "--output", "o2"]),
        &["`edited.jsonl`", "not the input the checkpoint read", "first committed bytes"],
    );
    std::fs::write(dir.join("short.jsonl"), &text[..text.len() / 10]).expect("short");
    refused(
        run(&journey, dir, &["--input", "short.jsonl", "--state-dir", "s2", "--output", "o2"]),
        &["`short.jsonl`", "already consumed"],
    );
    assert_eq!(outputs(&dir.join("o2")), o2);
    let appended: String = (0..10)
        .map(|n| format!("{{\"userId\":\"u{n}\",\"query\":\"appended query\",\"ts\":{}}}\n", 1_750_000_000_000u64 + n))
        .collect();
    std::fs::write(dir.join("longer.jsonl"), format!("{text}{appended}")).expect("longer");
    ok(run(&journey, dir, &["--input", "longer.jsonl", "--state-dir", "s2", "--output", "o2"]));
    let resumed = read(&dir.join("o2/long.jsonl"));
    assert!(resumed.starts_with(&o2.iter().find(|(name, _)| name == "long.jsonl").expect("long").1));
    assert_eq!(resumed.lines().count(), read(&dir.join("reference/long.jsonl")).lines().count() + 10);

    // Another pipeline's state directory: refused, whatever else matches.
    let other = binary("faults-other-journey");
    refused(
        run(&other, dir, &[&first[..], &["--output", "out"]].concat()),
        &["holds a checkpoint of pipeline `faults-journey`, not `faults-other-journey`", "--from-savepoint"],
    );
    assert_eq!(outputs(&dir.join("out")), reference);
}

#[test]
fn an_event_dated_far_ahead_is_a_dead_letter_and_does_not_make_later_events_late() {
    let journey = binary("faults-journey");
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let text = searches(400);
    std::fs::write(dir.join("searches.jsonl"), &text).expect("input");
    ok(run(&journey, dir, &["--input", "searches.jsonl", "--output", "reference"]));
    // The same events with one dated 9999-12-31 after line 10.
    let poison = r#"{"userId":"u1","query":"from the far future","ts":"9999-12-31T23:59:59Z"}"#;
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(10, poison);
    std::fs::write(dir.join("poisoned.jsonl"), lines.join("\n") + "\n").expect("poisoned");
    ok(run(&journey, dir, &["--input", "poisoned.jsonl", "--output", "out"]));
    for sink in ["final_query.jsonl", "long.jsonl"] {
        assert_eq!(read(&dir.join("out").join(sink)), read(&dir.join("reference").join(sink)), "{sink}");
    }
    let dead = read(&dir.join("out/_dead_letter.jsonl"));
    let future: Vec<&str> = dead.lines().filter(|line| line.contains("future-event")).collect();
    assert_eq!(future.len(), 1, "{dead}");
    assert!(future[0].contains("9999-12-31 23:59:59") && future[0].contains("maxFutureSkew 1d"), "{}", future[0]);
    assert!(future[0].contains("from the far future"), "the dead letter holds the event: {}", future[0]);

    // Turned off, the one event poisons the watermark: everything after it is late.
    ok(run(&journey, dir, &["--input", "poisoned.jsonl", "--output", "off", "--max-future-skew", "off"]));
    assert!(!read(&dir.join("off/_dead_letter.jsonl")).contains("future-event"));
    let settled = read(&dir.join("off/final_query.jsonl")).lines().count();
    assert!(settled < read(&dir.join("reference/final_query.jsonl")).lines().count() / 2, "{settled} settled");
    refused(
        run(&journey, dir, &["--input", "poisoned.jsonl", "--output", "bad", "--max-future-skew", "soon"]),
        &["--max-future-skew", "soon"],
    );
}

#[test]
fn a_line_over_the_limit_is_a_dead_letter_with_its_size_and_a_bounded_prefix() {
    let journey = binary("faults-journey");
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let text = searches(200);
    std::fs::write(dir.join("searches.jsonl"), &text).expect("input");
    ok(run(&journey, dir, &["--input", "searches.jsonl", "--output", "reference"]));
    // A 3 MB line (a JSON string) after line 5, with a limit of 1 MB.
    let long = format!("{{\"userId\":\"u1\",\"query\":\"{}\",\"ts\":1700000000000}}", "q".repeat(3 << 20));
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(5, &long);
    std::fs::write(dir.join("long.jsonl"), lines.join("\n") + "\n").expect("input");
    ok(run(&journey, dir, &["--input", "long.jsonl", "--output", "out", "--max-line-bytes", "1048576"]));
    for sink in ["final_query.jsonl", "long.jsonl"] {
        assert_eq!(read(&dir.join("out").join(sink)), read(&dir.join("reference").join(sink)), "{sink}");
    }
    let dead = read(&dir.join("out/_dead_letter.jsonl"));
    let too_long: Vec<&str> = dead.lines().filter(|line| line.contains("line-too-long")).collect();
    assert_eq!(too_long.len(), 1, "one dead letter for the long line");
    assert!(too_long[0].contains(&format!("a line of {} bytes", long.len() + 1)), "{}", &too_long[0][..300]);
    assert!(too_long[0].len() < 2048, "the dead letter holds a bounded prefix, not {} bytes", too_long[0].len());
}

/// Flips one byte in the middle of the first file of `dir` whose name passes `pick`.
fn flip(dir: &Path, pick: impl Fn(&str) -> bool) {
    let path = std::fs::read_dir(dir)
        .expect("state directory")
        .map(|entry| entry.expect("entry").path())
        .find(|path| pick(&path.file_name().expect("name").to_string_lossy()))
        .unwrap_or_else(|| panic!("no such file in {}", dir.display()));
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, bytes).expect("write");
}

fn remove(dir: &Path, pick: impl Fn(&str) -> bool) {
    for entry in std::fs::read_dir(dir).expect("state directory") {
        let path = entry.expect("entry").path();
        if pick(&path.file_name().expect("name").to_string_lossy()) {
            std::fs::remove_file(&path).expect("remove");
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
    }
}

/// What a resume over a damaged state directory must do.
enum Expect {
    /// Resume (from the last checkpoint RocksDB still holds) to the uninterrupted run's output.
    Identical,
    /// Stop with exit 1 and a message containing this.
    Fails(&'static str),
}

#[test]
fn state_directory_damage_either_resumes_exactly_or_fails_clearly() {
    let journey = binary("faults-journey");
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    std::fs::write(dir.join("searches.jsonl"), searches(3000)).expect("input");
    ok(run(&journey, dir, &["--input", "searches.jsonl", "--output", "reference"]));
    let reference = outputs(&dir.join("reference"));
    // Two stops, so the state has a flushed SST file, a MANIFEST and a live write-ahead log.
    let args = ["--input", "searches.jsonl", "--output", "out", "--state-dir", "state", "--checkpoint-every", "100"];
    ok(run(&journey, dir, &[&args[..], &["--stop-after", "1500"]].concat()));
    ok(run(&journey, dir, &[&args[..], &["--stop-after", "2000"]].concat()));
    let names: Vec<String> = std::fs::read_dir(dir.join("state"))
        .expect("state")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|name| name.ends_with(".sst")) && names.iter().any(|name| name.ends_with(".log")),
        "{names:?}"
    );
    copy_dir(&dir.join("state"), &dir.join("state.kept"));
    copy_dir(&dir.join("out"), &dir.join("out.kept"));

    type Damage = fn(&Path);
    let cases: [(&str, Damage, Expect); 9] = [
        ("nothing", |_| {}, Expect::Identical),
        ("OPTIONS removed", |state| remove(state, |name| name.starts_with("OPTIONS-")), Expect::Identical),
        (
            "write-ahead log flipped",
            |state| flip(state, |name| name.ends_with(".log") && name != "LOG"),
            Expect::Identical,
        ),
        (
            "write-ahead log removed",
            |state| remove(state, |name| name.ends_with(".log") && name != "LOG"),
            Expect::Identical,
        ),
        (
            "SST flipped",
            |state| flip(state, |name| name.ends_with(".sst")),
            Expect::Fails("Corruption: block checksum mismatch"),
        ),
        (
            "SST removed",
            |state| remove(state, |name| name.ends_with(".sst")),
            Expect::Fails("cannot open the state directory"),
        ),
        ("MANIFEST flipped", |state| flip(state, |name| name.starts_with("MANIFEST-")), Expect::Fails("Corruption")),
        (
            "CURRENT removed",
            |state| remove(state, |name| name == "CURRENT"),
            Expect::Fails("cannot open the state directory"),
        ),
        (
            "output cut short",
            |state| {
                let out = state.parent().expect("parent").join("out/long.jsonl");
                std::fs::OpenOptions::new().write(true).open(out).expect("open").set_len(100).expect("truncate");
            },
            Expect::Fails("holds 100 bytes but the checkpoint committed"),
        ),
    ];
    let mut outcomes = Vec::new();
    for (what, damage, expect) in cases {
        copy_dir(&dir.join("state.kept"), &dir.join("state"));
        copy_dir(&dir.join("out.kept"), &dir.join("out"));
        damage(&dir.join("state"));
        let output = run(&journey, dir, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        match expect {
            Expect::Identical => {
                assert!(output.status.success(), "{what}: {stderr}");
                assert!(outputs(&dir.join("out")) == reference, "{what}: the resumed output differs");
            }
            Expect::Fails(says) => {
                assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
                assert!(stderr.contains(says), "{what}: the error should say `{says}`: {stderr}");
            }
        }
        outcomes.push(format!("{what}: {}", if output.status.success() { "identical output" } else { "exit 1" }));
    }
    eprintln!("state-directory damage: {}", outcomes.join("; "));
}

#[test]
fn a_damaged_memory_snapshot_fails_clearly() {
    let journey = memory_binary("faults-journey-memory");
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    std::fs::write(dir.join("searches.jsonl"), searches(2000)).expect("input");
    let args = ["--input", "searches.jsonl", "--output", "out", "--state-dir", "state"];
    ok(run(&journey, dir, &[&args[..], &["--checkpoint-every", "100", "--stop-after", "1000"]].concat()));
    flip(&dir.join("state"), |name| name == "memory.snapshot");
    let output = run(&journey, dir, &args);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("checksum mismatch"));
}

#[test]
fn state_that_does_not_decode_when_a_timer_fires_is_a_dead_letter_naming_the_timer() {
    let journey = memory_binary("faults-journey-timer-state");
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    std::fs::write(dir.join("searches.jsonl"), searches(2000)).expect("input");
    let args = ["--input", "searches.jsonl", "--output", "out", "--state-dir", "state"];
    ok(run(&journey, dir, &[&args[..], &["--checkpoint-every", "100", "--stop-after", "1000"]].concat()));
    // Garble the pending record of one key of the delay: the value no longer decodes.
    let path = dir.join("state").join("memory.snapshot");
    let mut snapshot =
        pulse_runtime::checkpoint::Snapshot::decode(&std::fs::read(&path).expect("snapshot")).expect("valid");
    let (_, key, value) = snapshot.entries.iter_mut().find(|(node, _, _)| node == "settle").expect("a pending delay");
    let key = String::from_utf8_lossy(key).into_owned();
    *value = vec![0xff; 3];
    std::fs::write(&path, snapshot.encode()).expect("write snapshot");

    ok(run(&journey, dir, &args));
    let dead = std::fs::read_to_string(dir.join("out").join("_dead_letter.jsonl")).expect("dead letters");
    let letters: Vec<serde_json::Value> =
        dead.lines().map(|line| serde_json::from_str(line).expect("JSON dead letter")).collect();
    let timer = letters
        .iter()
        .find(|letter| letter["event"]["timer"].is_object())
        .unwrap_or_else(|| panic!("no dead letter names the timer; dead letters:\n{dead}"));
    assert!(timer["reason"].as_str().is_some_and(|reason| reason.starts_with("state: ")), "{timer}");
    assert_eq!(timer["event"]["timer"]["node"], "settle", "{timer}");
    assert_eq!(timer["event"]["timer"]["key"], key.as_str(), "{timer}");
    assert!(timer["event"]["timer"]["time"].is_i64(), "{timer}");
}

/// A tmpfs of `size` mounted on a new directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|status| status.success());
        mounted.then(|| Tmpfs(dir))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.0).status();
        assert!(status.is_ok_and(|status| status.success()), "remount");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_disk_stops_the_run_and_a_resume_after_freeing_space_completes_it_exactly() {
    let journey = binary("faults-journey");
    let Some(disk) = Tmpfs::mount("256k") else {
        // Mounting needs root (CAP_SYS_ADMIN). Without it, `/dev/full` still answers every write
        // with ENOSPC: the dead letters (line 7 is not JSON) cannot be written.
        eprintln!("cannot mount a tmpfs: checking a full dead-letter file only");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("searches.jsonl"), searches(100)).expect("input");
        let full = run(&journey, dir.path(), &["--input", "searches.jsonl", "--dead-letter", "/dev/full"]);
        let stderr = String::from_utf8_lossy(&full.stderr);
        assert_eq!(full.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("No space left on device"), "{stderr}");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    std::fs::write(dir.join("searches.jsonl"), searches(3000)).expect("input");
    ok(run(&journey, dir, &["--input", "searches.jsonl", "--output", "reference"]));
    let out = disk.0.join("out").display().to_string();
    let args = ["--input", "searches.jsonl", "--output", &out, "--state-dir", "state", "--checkpoint-interval", "10ms"];
    let full = run(&journey, dir, &args);
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    disk.resize("64m");
    ok(run(&journey, dir, &args));
    assert!(outputs(&disk.0.join("out")) == outputs(&dir.join("reference")), "the resumed output differs");
}

#[test]
fn a_restart_with_the_savepoint_it_was_started_from_continues_from_its_checkpoint() {
    let journey = binary("faults-journey");
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    std::fs::write(dir.join("searches.jsonl"), searches(3000)).expect("input");
    let savepoint = |state: &str, to: &str| {
        let output = Command::new(&journey)
            .current_dir(dir)
            .args(["savepoint", "create", "--state-dir", state, "--to", to, "--quiet"])
            .output()
            .expect("binary runs");
        ok(output);
    };
    let first = ["--input", "searches.jsonl", "--output", "first", "--checkpoint-every", "100"];
    ok(run(&journey, dir, &[&first[..], &["--state-dir", "s1", "--stop-after", "1000"]].concat()));
    savepoint("s1", "one.savepoint");
    ok(run(&journey, dir, &[&first[..], &["--state-dir", "s1", "--stop-after", "1500"]].concat()));
    savepoint("s1", "other.savepoint");

    // The deployed arguments, started, stopped as if the pod died, and started again unchanged.
    let deployed =
        ["--input", "searches.jsonl", "--from-savepoint", "one.savepoint", "--state-dir", "s2", "--output", "o2"];
    ok(run(&journey, dir, &[&deployed[..], &["--checkpoint-every", "100", "--stop-after", "2000"]].concat()));
    let restarted = Command::new(&journey).current_dir(dir).arg("run").args(deployed).output().expect("binary runs");
    let stderr = String::from_utf8_lossy(&restarted.stderr).into_owned();
    ok(restarted);
    assert!(stderr.contains("continuing from the checkpoint"), "{stderr}");
    // The same as one uninterrupted run from the savepoint.
    ok(run(
        &journey,
        dir,
        &["--input", "searches.jsonl", "--from-savepoint", "one.savepoint", "--state-dir", "s3", "--output", "o3"],
    ));
    assert!(outputs(&dir.join("o2")) == outputs(&dir.join("o3")), "the restarted run's output differs");

    // Another savepoint over that state directory: refused, nothing touched.
    let before = outputs(&dir.join("o2"));
    refused(
        run(
            &journey,
            dir,
            &[
                "--input",
                "searches.jsonl",
                "--from-savepoint",
                "other.savepoint",
                "--state-dir",
                "s2",
                "--output",
                "o2",
            ],
        ),
        &["does not descend from savepoint `other.savepoint`", "new --state-dir"],
    );
    assert!(outputs(&dir.join("o2")) == before);
}
