//! `pulsec image` end to end: the image of `examples/welcome` is byte-identical when built twice,
//! Debian's `skopeo` reads its labels, entrypoint and user, `umoci` unpacks it and the binary in
//! the unpacked rootfs — with only the rootfs's own libraries, and in a `chroot` of it as the
//! image's non-root user when the tests run as root — turns `input.jsonl` into `expected/`, and
//! `skopeo copy` turns it into a `docker load`-able archive.
//!
//! skopeo and umoci are installed by scripts/install-deps.sh; without them these tests fail.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::sync::OnceLock;

const PIPELINE_NAME: &str = "welcome-message-d0";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace exists")
}

fn example() -> PathBuf {
    workspace().join("examples/welcome")
}

/// The path of a tool the tests need, or a failure that says how to install it.
fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(name);
        if path.is_file() {
            return path;
        }
    }
    panic!("`{name}` is not installed: run scripts/install-deps.sh (Debian package `{name}`)");
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|error| panic!("{command:?} does not start: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn pulsec(args: &[&std::ffi::OsStr]) -> ExitCode {
    let mut argv: Vec<OsString> = vec!["pulsec".into()];
    argv.extend(args.iter().map(|arg| arg.to_os_string()));
    pulsec::main_with_args(argv)
}

/// The image built three times: two archives and one layout directory, in one temp dir.
struct Images {
    dir: tempfile::TempDir,
}

impl Images {
    fn first_tar(&self) -> PathBuf {
        self.dir.path().join("first.tar")
    }
    fn second_tar(&self) -> PathBuf {
        self.dir.path().join("second.tar")
    }
    fn layout_dir(&self) -> PathBuf {
        self.dir.path().join("layout")
    }
}

fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let images = Images { dir: tempfile::tempdir().expect("temp dir") };
        let source = example().join("pipeline.pulse");
        let first = pulsec(&[
            "image".as_ref(),
            source.as_os_str(),
            "-o".as_ref(),
            images.first_tar().as_os_str(),
            "--oci-dir".as_ref(),
            images.layout_dir().as_os_str(),
        ]);
        assert_eq!(first, ExitCode::SUCCESS, "pulsec image failed");
        let second = pulsec(&["image".as_ref(), source.as_os_str(), "-o".as_ref(), images.second_tar().as_os_str()]);
        assert_eq!(second, ExitCode::SUCCESS, "pulsec image failed the second time");
        images
    })
}

#[test]
fn the_same_pipeline_gives_a_byte_identical_image() {
    let images = images();
    let first = std::fs::read(images.first_tar()).expect("first image");
    let second = std::fs::read(images.second_tar()).expect("second image");
    assert!(first.len() > 1 << 20, "the image holds the binary and its libraries: {} bytes", first.len());
    assert!(first == second, "two builds of the same pipeline differ");
}

#[test]
fn skopeo_reads_the_labels_entrypoint_and_user() {
    let images = images();
    let archive = format!("oci-archive:{}:latest", images.first_tar().display());
    let inspect = run(Command::new(tool("skopeo")).args(["inspect", &archive]));
    let inspect: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("skopeo prints JSON");
    let labels = &inspect["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], PIPELINE_NAME);
    assert_eq!(labels["org.opencontainers.image.version"], "1.0", "the pipeline's `version`");
    let sha256sum = run(Command::new(tool("sha256sum")).arg(example().join("pipeline.pulse")));
    let source_hash = String::from_utf8_lossy(&sha256sum.stdout).split_whitespace().next().unwrap_or("").to_string();
    assert_eq!(labels["io.pulse.source-sha256"], source_hash.as_str());
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Created"], "1970-01-01T00:00:00Z");
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(1));

    // The layout directory is the same image.
    let layout = format!("oci:{}:latest", images.layout_dir().display());
    let config = run(Command::new(tool("skopeo")).args(["inspect", "--config", &layout]));
    let config: serde_json::Value = serde_json::from_slice(&config.stdout).expect("skopeo prints JSON");
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!([format!("/usr/local/bin/{PIPELINE_NAME}")]));
    let env: Vec<&str> =
        config["config"]["Env"].as_array().expect("Env").iter().filter_map(serde_json::Value::as_str).collect();
    assert!(env.contains(&"PULSE_STATE_DIR=/var/lib/pulse"), "{env:?}");
    assert_eq!(config["config"]["Labels"], *labels);
}

/// Every line of a JSON-lines file as canonical JSON, sorted; dead letters compare by reason
/// category (as in examples.rs, G51).
fn multiset(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let dead_letters = path.file_name().is_some_and(|name| name == "_dead_letter.jsonl");
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            if dead_letters {
                let reason = value["reason"].as_str().unwrap_or_default();
                let category = reason.split(':').next().unwrap_or(reason).to_string();
                value["reason"] = serde_json::Value::String(category);
            }
            value.to_string()
        })
        .collect();
    lines.sort();
    lines
}

fn assert_expected_output(output: &Path) {
    let files = |dir: &Path| -> BTreeMap<String, PathBuf> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
            .map(|entry| entry.expect("entry").path())
            .map(|path| (path.file_name().expect("name").to_string_lossy().into_owned(), path))
            .collect()
    };
    let expected = files(&example().join("expected"));
    let produced = files(output);
    assert_eq!(expected.keys().collect::<Vec<_>>(), produced.keys().collect::<Vec<_>>());
    for (name, path) in &expected {
        assert_eq!(multiset(path), multiset(&produced[name]), "{name} differs from expected/{name}");
    }
}

/// Directories of the rootfs that hold shared libraries.
fn library_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut has_library = false;
        for entry in std::fs::read_dir(&dir).expect("readable dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|name| name.to_string_lossy().contains(".so")) {
                has_library = true;
            }
        }
        if has_library {
            dirs.push(dir);
        }
    }
    dirs.sort();
    dirs
}

#[test]
fn the_binary_runs_from_the_unpacked_rootfs() {
    let images = images();
    let work = tempfile::tempdir().expect("temp dir");
    let bundle = work.path().join("bundle");
    let layout = format!("{}:latest", images.layout_dir().display());
    run(Command::new(tool("umoci")).args(["unpack", "--rootless", "--image", &layout]).arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let binary = rootfs.join("usr/local/bin").join(PIPELINE_NAME);
    assert!(binary.is_file(), "{} is in the image", binary.display());
    let loader = rootfs.join("lib64/ld-linux-x86-64.so.2");
    assert!(loader.is_file(), "the dynamic loader the binary names is in the image");

    // With the image's loader and only the image's libraries.
    let library_path: Vec<String> = library_dirs(&rootfs).iter().map(|dir| dir.display().to_string()).collect();
    // The loader falls back to the host's directories for a library the path lacks, so check
    // first that every library resolves inside the rootfs.
    let listed =
        run(Command::new(&loader).arg("--library-path").arg(library_path.join(":")).arg("--list").arg(&binary));
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    for line in listed.lines().filter(|line| line.contains("=>")) {
        let resolved = line.split("=>").nth(1).unwrap_or_default().trim();
        assert!(resolved.starts_with(&rootfs.display().to_string()), "not from the image: {line}\n{listed}");
    }
    assert!(listed.contains("librocksdb"), "{listed}");
    let output = work.path().join("out");
    run(Command::new(&loader)
        .env_clear()
        .arg("--library-path")
        .arg(library_path.join(":"))
        .arg(&binary)
        .arg("run")
        .arg("--quiet")
        .arg("--input")
        .arg(example().join("input.jsonl"))
        .arg("--output")
        .arg(&output)
        .arg("--state-dir")
        .arg(work.path().join("state")));
    assert_expected_output(&output);

    // FROM scratch for real: nothing but the rootfs, as the image's user (needs root for chroot).
    let user = run(Command::new(tool("id")).arg("-u"));
    if String::from_utf8_lossy(&user.stdout).trim() == "0" {
        std::fs::copy(example().join("input.jsonl"), rootfs.join("tmp/input.jsonl")).expect("copy input");
        run(Command::new(tool("chroot"))
            .env_clear()
            .arg("--userspec=65532:65532")
            .arg(&rootfs)
            .arg(format!("/usr/local/bin/{PIPELINE_NAME}"))
            .args(["run", "--quiet", "--input", "/tmp/input.jsonl", "--output", "/tmp/out"])
            .args(["--state-dir", "/tmp/state"]));
        assert_expected_output(&rootfs.join("tmp/out"));
    }
}

#[test]
fn skopeo_copies_the_image_into_a_docker_archive() {
    let images = images();
    let work = tempfile::tempdir().expect("temp dir");
    let docker_archive = work.path().join("docker.tar");
    run(Command::new(tool("skopeo"))
        .arg("copy")
        .arg(format!("oci-archive:{}:latest", images.first_tar().display()))
        .arg(format!("docker-archive:{}:{PIPELINE_NAME}:1.0", docker_archive.display())));
    let file = std::fs::File::open(&docker_archive).expect("docker archive");
    let mut archive = tar::Archive::new(file);
    let mut manifest = None;
    for entry in archive.entries().expect("a tar archive") {
        let mut entry = entry.expect("an entry");
        if entry.path().expect("path").as_os_str() == "manifest.json" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).expect("readable manifest");
            manifest = Some(text);
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&manifest.expect("the archive has manifest.json")).expect("JSON manifest");
    let tags = &manifest[0]["RepoTags"];
    assert!(tags.to_string().contains(&format!("{PIPELINE_NAME}:1.0")), "{manifest}");
    assert_eq!(manifest[0]["Layers"].as_array().map(Vec::len), Some(1), "{manifest}");
}
