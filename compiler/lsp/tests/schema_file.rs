//! The language server reads the schema file an edited pipeline names through the same guarded
//! reader as `pulsec`: never outside the pipeline's directory, never a FIFO or device.

use pulse_lsp::analysis::analyze;
use pulse_lsp::schema_file::read_schema_file;
use pulse_syntax::codes;

fn analyze_in(dir: &std::path::Path, schema_path: &str) -> Vec<pulse_syntax::codes::Code> {
    let text = format!("pipeline s\nschema {schema_path:?}\nsrc: file-source(\"x.jsonl\")\nsrc -> out: stdout-sink\n");
    let read_schema = |relative: &str| read_schema_file(dir, relative, false);
    analyze("p.pulse", text, &read_schema).diagnostics.iter().map(|diagnostic| diagnostic.code).collect()
}

#[test]
fn the_server_refuses_schema_files_outside_the_directory_and_special_files() {
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("pipeline");
    std::fs::create_dir_all(&dir).expect("mkdir");
    assert!(analyze_in(&dir, "/etc/passwd").contains(&codes::E0905));
    assert!(analyze_in(&dir, "/proc/self/environ").contains(&codes::E0905));
    let fifo = dir.join("fifo.json");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs").success());
    assert!(analyze_in(&dir, "fifo.json").contains(&codes::E0906));
    std::fs::write(dir.join("ok.json"), "{\"type\": \"object\", \"properties\": {}}").expect("write");
    assert_eq!(analyze_in(&dir, "ok.json"), Vec::<pulse_syntax::codes::Code>::new());
}
