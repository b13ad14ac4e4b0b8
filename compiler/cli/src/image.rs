//! `pulsec image`: builds a pipeline and writes it as a reproducible OCI image — one uncompressed
//! layer holding the binary, every shared library `ldd` resolves for it (at the same absolute
//! paths, so it runs `FROM scratch`), the dynamic loader its `PT_INTERP` names, `/etc/passwd` and
//! `/etc/group` with the non-root user `pulse` (65532), `/tmp` and the state directory
//! `/var/lib/pulse`.
//!
//! Reproducible: every tar header is normalized (fixed mtime, uid/gid, modes, sorted entries),
//! JSON is compact with sorted keys, and `created` is the epoch (or `SOURCE_DATE_EPOCH`), so the
//! same binary and source give a byte-identical layout, archive or directory.

use crate::load::Loaded;
use crate::native::{self, Profile};
use crate::{MessageFormat, EXIT_BUILD, EXIT_ERRORS, EXIT_USAGE};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The non-root user and group the image runs as (the distroless convention).
pub const USER_ID: u32 = 65532;
/// Where the pipeline keeps its RocksDB state and checkpoints in the container.
pub const STATE_DIR: &str = "/var/lib/pulse";
/// The port of `/metrics`, `/healthz` and `/readyz`.
pub const METRICS_PORT: u16 = 9464;

const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_TYPE_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

#[derive(clap::Args)]
pub struct ImageArgs {
    /// The pipeline (`.pulse` or JSON DAG).
    pub file: PathBuf,
    /// Write the OCI layout as a tar archive (an `oci-archive:`); default `./<pipeline name>.tar`
    /// unless `--oci-dir` is given.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Write the OCI layout as a directory (an `oci:` layout; an `index.json` there is replaced).
    #[arg(long, value_name = "DIR")]
    pub oci_dir: Option<PathBuf>,
    /// The tag the layout's index names the image by (`org.opencontainers.image.ref.name`).
    #[arg(long, default_value = "latest")]
    pub tag: String,
    /// Build without optimizations (faster to compile).
    #[arg(long)]
    pub debug: bool,
}

/// What the image says about the pipeline, besides its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// The pipeline name: the binary is `/usr/local/bin/<name>`.
    pub name: String,
    /// The pipeline's own `version`, if it declares one.
    pub version: Option<String>,
    /// Hex SHA-256 of the pipeline source bytes.
    pub source_sha256: String,
    /// The tag in `index.json`.
    pub tag: String,
    /// Seconds since the epoch for every mtime and `created`.
    pub created_epoch: u64,
}

/// A complete OCI image layout: relative path (`oci-layout`, `index.json`, `blobs/sha256/...`)
/// to contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub files: BTreeMap<String, Vec<u8>>,
    /// `sha256:...` of the manifest, the image's identity.
    pub manifest_digest: String,
    /// Bytes of the one layer.
    pub layer_size: u64,
}

pub fn command(args: ImageArgs) -> ExitCode {
    if !valid_tag(&args.tag) {
        eprintln!(
            "error: invalid tag `{}`: use letters, digits, `_`, `.` and `-` (at most 128, not first `.`/`-`)",
            args.tag
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let Some(loaded) = crate::load_checked(&args.file, MessageFormat::Human) else {
        return ExitCode::from(EXIT_ERRORS);
    };
    let pipeline = loaded.pipeline.as_ref().expect("a checked file has a pipeline");
    let built = match build_binary(&args.file, &loaded, args.debug) {
        Ok(built) => built,
        Err(code) => return code,
    };
    let spec = ImageSpec {
        name: pipeline.name.clone(),
        version: pipeline.version.clone(),
        source_sha256: source_digest(&loaded.sources, loaded.file),
        tag: args.tag.clone(),
        created_epoch: source_date_epoch(),
    };
    let layout = match runtime_files(&built.binary).and_then(|files| image_layout(&built.binary, &files, &spec)) {
        Ok(layout) => layout,
        Err(error) => {
            eprintln!("error: cannot make the image of `{}`: {error}", pipeline.name);
            return ExitCode::from(EXIT_BUILD);
        }
    };
    let tar_output = match (&args.output, &args.oci_dir) {
        (None, None) => Some(PathBuf::from(format!("{}.tar", pipeline.name))),
        (output, _) => output.clone(),
    };
    if let Some(dir) = &args.oci_dir {
        if let Err(error) = layout.write_dir(dir) {
            eprintln!("error: cannot write the OCI layout to `{}`: {error}", dir.display());
            return ExitCode::from(EXIT_BUILD);
        }
        eprintln!("wrote {} (oci:{}:{})", dir.display(), dir.display(), spec.tag);
    }
    if let Some(path) = &tar_output {
        if let Err(error) = std::fs::write(path, layout.to_tar()) {
            eprintln!("error: cannot write `{}`: {error}", path.display());
            return ExitCode::from(EXIT_BUILD);
        }
        eprintln!("wrote {} (oci-archive:{}:{})", path.display(), path.display(), spec.tag);
    }
    eprintln!("image {} ({} layer bytes)", layout.manifest_digest, layout.layer_size);
    ExitCode::SUCCESS
}

/// `native::build` with the build's diagnostics reported as `pulsec build` reports them.
fn build_binary(file: &Path, loaded: &Loaded, debug: bool) -> Result<native::Built, ExitCode> {
    let pipeline = loaded.pipeline.as_ref().expect("a checked file has a pipeline");
    let profile = if debug { Profile::Debug } else { Profile::Release };
    native::build(pipeline, file, profile, false, &|id| loaded.node_span(id)).map_err(|diagnostics| {
        crate::report_diagnostics(&loaded.sources, &diagnostics, MessageFormat::Human);
        crate::build_exit_code(&diagnostics)
    })
}

/// A docker/OCI tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let first_ok = chars.next().is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    first_ok && tag.len() <= 128 && chars.all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'))
}

/// `SOURCE_DATE_EPOCH` (the reproducible-builds convention) if set and valid, else 0.
fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|value| value.trim().parse().ok()).unwrap_or(0)
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Hex SHA-256 of what the pipeline was compiled from: the pipeline file's bytes, then, for
/// every other file it loaded (its JSON Schema), a NUL, the path as the pipeline wrote it, a NUL
/// and that file's bytes. For a pipeline without such a file it is `sha256sum` of the file, and
/// a changed schema changes it.
pub fn source_digest(sources: &pulse_syntax::SourceMap, main: pulse_syntax::FileId) -> String {
    let mut hasher = Sha256::new();
    hasher.update(sources.get(main).text.as_bytes());
    for (_, source) in sources.files().filter(|(file, _)| *file != main) {
        hasher.update([0]);
        hasher.update(source.name.as_bytes());
        hasher.update([0]);
        hasher.update(source.text.as_bytes());
    }
    hex(&hasher.finalize())
}

/// The shared libraries `ldd` resolves for `binary` and the dynamic loader its `PT_INTERP`
/// names, as absolute paths, sorted and without duplicates. Empty for a static binary.
pub fn runtime_files(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let bytes = std::fs::read(binary).map_err(|error| format!("cannot read `{}`: {error}", binary.display()))?;
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(interpreter) = elf_interpreter(&bytes) {
        files.push(PathBuf::from(interpreter));
    }
    if !files.is_empty() {
        let output = std::process::Command::new("ldd")
            .arg(binary)
            .output()
            .map_err(|error| format!("cannot run `ldd` (Debian: libc-bin): {error}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "`ldd {}` failed: {}{}",
                binary.display(),
                stdout.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        files.extend(parse_ldd(&stdout)?);
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// The absolute paths in `ldd` output; an error names the libraries it could not find.
pub fn parse_ldd(output: &str) -> Result<Vec<PathBuf>, String> {
    let mut paths = Vec::new();
    let mut missing = Vec::new();
    for line in output.lines().map(str::trim).filter(|line| !line.is_empty()) {
        // `libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)`, `/lib64/ld-linux-x86-64.so.2 (0x...)`,
        // `linux-vdso.so.1 (0x...)` (in the kernel, nothing to ship) or `libfoo.so => not found`.
        let resolved = match line.split_once("=>") {
            Some((name, target)) => {
                let target = target.trim();
                if target.starts_with("not found") {
                    missing.push(name.trim().to_string());
                    continue;
                }
                target
            }
            None => line,
        };
        if let Some(path) = resolved.split_whitespace().next().filter(|path| path.starts_with('/')) {
            paths.push(PathBuf::from(path));
        }
    }
    if !missing.is_empty() {
        return Err(format!("`ldd` cannot find {}", missing.join(", ")));
    }
    Ok(paths)
}

/// The program interpreter of a 64-bit little-endian ELF file (its `PT_INTERP` segment).
pub fn elf_interpreter(bytes: &[u8]) -> Option<String> {
    const PT_INTERP: u32 = 3;
    if bytes.get(..4)? != b"\x7fELF" || *bytes.get(4)? != 2 || *bytes.get(5)? != 1 {
        return None;
    }
    let program_headers = read_u64(bytes, 0x20)? as usize;
    let entry_size = read_u16(bytes, 0x36)? as usize;
    let n_entries = read_u16(bytes, 0x38)? as usize;
    (0..n_entries).find_map(|idx| {
        let at = program_headers.checked_add(idx.checked_mul(entry_size)?)?;
        if read_u32(bytes, at)? != PT_INTERP {
            return None;
        }
        let offset = read_u64(bytes, at + 8)? as usize;
        let size = read_u64(bytes, at + 32)? as usize;
        let text = bytes.get(offset..offset.checked_add(size)?)?;
        let text = text.split(|byte| *byte == 0).next()?;
        Some(String::from_utf8_lossy(text).into_owned())
    })
}

/// The OCI architecture of an ELF file's `e_machine` (amd64 unless it says otherwise).
fn elf_architecture(bytes: &[u8]) -> &'static str {
    match read_u16(bytes, 0x12) {
        Some(183) => "arm64",
        _ => "amd64",
    }
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// One entry of a normalized tar archive.
enum TarEntry {
    Directory { mode: u32, owner: u32 },
    File { contents: Vec<u8>, mode: u32 },
}

/// Entries by path (relative, no leading `/`). Directories are keyed with a trailing `/`, so
/// sorting the keys puts every directory before what it contains.
#[derive(Default)]
struct TarTree {
    entries: BTreeMap<String, TarEntry>,
}

impl TarTree {
    /// Adds every missing parent directory of `path`, with mode 0755 and owner root.
    fn parents(&mut self, path: &str) {
        let mut parent = String::new();
        let components: Vec<&str> = path.trim_matches('/').split('/').collect();
        for component in &components[..components.len() - 1] {
            parent.push_str(component);
            parent.push('/');
            self.entries.entry(parent.clone()).or_insert(TarEntry::Directory { mode: 0o755, owner: 0 });
        }
    }

    fn file(&mut self, path: &str, contents: Vec<u8>, mode: u32) {
        self.parents(path);
        self.entries.insert(path.trim_start_matches('/').to_string(), TarEntry::File { contents, mode });
    }

    fn directory(&mut self, path: &str, mode: u32, owner: u32) {
        self.parents(path);
        self.entries.insert(format!("{}/", path.trim_matches('/')), TarEntry::Directory { mode, owner });
    }

    fn to_tar(&self, mtime: u64) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_ustar();
            header.set_mtime(mtime);
            // Device numbers are written as octal zeros rather than left as NULs, as GNU tar does.
            header.set_device_major(0).expect("a ustar header has device fields");
            header.set_device_minor(0).expect("a ustar header has device fields");
            let appended = match entry {
                TarEntry::Directory { mode, owner } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_uid(u64::from(*owner));
                    header.set_gid(u64::from(*owner));
                    header.set_size(0);
                    builder.append_data(&mut header, path, std::io::empty())
                }
                TarEntry::File { contents, mode } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_uid(0);
                    header.set_gid(0);
                    header.set_size(contents.len() as u64);
                    builder.append_data(&mut header, path, contents.as_slice())
                }
            };
            appended.expect("writing a tar entry to memory cannot fail");
        }
        builder.into_inner().expect("finishing a tar archive in memory cannot fail")
    }
}

/// The layer: the binary, its runtime files, users, `/tmp` and the state directory.
fn layer_tar(binary: &[u8], runtime_files: &[(PathBuf, Vec<u8>)], spec: &ImageSpec) -> Vec<u8> {
    let mut tree = TarTree::default();
    tree.file(
        "etc/passwd",
        format!("root:x:0:0:root:/root:/sbin/nologin\npulse:x:{USER_ID}:{USER_ID}:pulse:{STATE_DIR}:/sbin/nologin\n")
            .into_bytes(),
        0o644,
    );
    tree.file("etc/group", format!("root:x:0:\npulse:x:{USER_ID}:\n").into_bytes(), 0o644);
    tree.directory("tmp", 0o1777, 0);
    tree.directory(STATE_DIR, 0o750, USER_ID);
    for (path, contents) in runtime_files {
        tree.file(&path.to_string_lossy(), contents.clone(), 0o755);
    }
    tree.file(&format!("usr/local/bin/{}", spec.name), binary.to_vec(), 0o755);
    tree.to_tar(spec.created_epoch)
}

/// `created` as RFC 3339 (UTC) from seconds since the epoch.
fn rfc3339(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    let (year, month, day) = pulse_stdlib::time::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
}

/// The image config's labels: title, version and the source hash.
pub fn labels(spec: &ImageSpec) -> BTreeMap<String, String> {
    let pulsec_version = env!("CARGO_PKG_VERSION").to_string();
    let mut labels = BTreeMap::new();
    labels.insert("org.opencontainers.image.title".to_string(), spec.name.clone());
    // A pipeline without a `version` is versioned by the compiler that built it; the
    // `io.pulse.version-source` label says which of the two the version is.
    let (version, version_source) = match &spec.version {
        Some(version) => (version.clone(), "pipeline"),
        None => (pulsec_version.clone(), "pulsec"),
    };
    labels.insert("org.opencontainers.image.version".to_string(), version);
    labels.insert("io.pulse.version-source".to_string(), version_source.to_string());
    labels.insert("io.pulse.pulsec-version".to_string(), pulsec_version);
    labels.insert("io.pulse.source-sha256".to_string(), spec.source_sha256.clone());
    labels
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "mediaType": media_type,
        "digest": format!("sha256:{}", hex_sha256(bytes)),
        "size": bytes.len(),
    })
}

/// The whole layout of the image of `binary` (its `runtime_files` read from this machine).
pub fn image_layout(binary_path: &Path, runtime_files: &[PathBuf], spec: &ImageSpec) -> Result<Layout, String> {
    let binary =
        std::fs::read(binary_path).map_err(|error| format!("cannot read `{}`: {error}", binary_path.display()))?;
    let mut files = Vec::new();
    for path in runtime_files {
        let contents = std::fs::read(path).map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
        files.push((path.clone(), contents));
    }
    let layer = layer_tar(&binary, &files, spec);
    let created = rfc3339(spec.created_epoch);
    let entrypoint = format!("/usr/local/bin/{}", spec.name);
    let config = serde_json::json!({
        "created": created,
        "architecture": elf_architecture(&binary),
        "os": "linux",
        "config": {
            "User": format!("{USER_ID}:{USER_ID}"),
            "Entrypoint": [entrypoint],
            "Env": [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                format!("PULSE_STATE_DIR={STATE_DIR}"),
                format!("PULSE_METRICS_ADDR=0.0.0.0:{METRICS_PORT}"),
            ],
            "WorkingDir": STATE_DIR,
            "ExposedPorts": { format!("{METRICS_PORT}/tcp"): {} },
            "Labels": labels(spec),
        },
        "rootfs": {
            "type": "layers",
            // The layer is uncompressed, so its diff_id is its digest.
            "diff_ids": [format!("sha256:{}", hex_sha256(&layer))],
        },
        "history": [{ "created": created, "created_by": format!("pulsec image {}", spec.name) }],
    });
    let config_bytes = serde_json::to_vec(&config).expect("a JSON value serializes");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": descriptor(MEDIA_TYPE_CONFIG, &config_bytes),
        "layers": [descriptor(MEDIA_TYPE_LAYER, &layer)],
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("a JSON value serializes");
    let mut manifest_descriptor = descriptor(MEDIA_TYPE_MANIFEST, &manifest_bytes);
    manifest_descriptor["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": spec.tag });
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [manifest_descriptor],
    });
    let manifest_digest = format!("sha256:{}", hex_sha256(&manifest_bytes));
    let layer_size = layer.len() as u64;
    let mut layout = BTreeMap::new();
    layout.insert("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    layout.insert("index.json".to_string(), serde_json::to_vec(&index).expect("a JSON value serializes"));
    for blob in [layer, config_bytes, manifest_bytes] {
        layout.insert(format!("blobs/sha256/{}", hex_sha256(&blob)), blob);
    }
    Ok(Layout { files: layout, manifest_digest, layer_size })
}

impl Layout {
    /// The layout as a tar archive (what `oci-archive:` reads), normalized like the layer.
    pub fn to_tar(&self) -> Vec<u8> {
        let mut tree = TarTree::default();
        for (path, contents) in &self.files {
            tree.file(path, contents.clone(), 0o644);
        }
        tree.to_tar(0)
    }

    /// Writes the layout under `dir` (created if needed; files already there are replaced).
    pub fn write_dir(&self, dir: &Path) -> std::io::Result<()> {
        for (path, contents) in &self.files {
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, contents)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_digest_covers_the_schema_file() {
        let mut alone = pulse_syntax::SourceMap::new();
        let main = alone.add("p.pulse", "pipeline demo");
        assert_eq!(source_digest(&alone, main), hex_sha256(b"pipeline demo"), "sha256sum of the file");
        let with_schema = |schema: &str| {
            let mut sources = pulse_syntax::SourceMap::new();
            let main = sources.add("p.pulse", "pipeline demo");
            sources.add("events.schema.json", schema);
            source_digest(&sources, main)
        };
        let first = with_schema(r#"{"type": "object"}"#);
        assert_ne!(first, source_digest(&alone, main), "the schema counts");
        assert_ne!(first, with_schema(r#"{"type": "object", "required": ["userId"]}"#), "its contents count");
        assert_eq!(first, with_schema(r#"{"type": "object"}"#), "deterministic");
    }

    fn spec() -> ImageSpec {
        ImageSpec {
            name: "demo".to_string(),
            version: None,
            source_sha256: hex_sha256(b"pipeline demo"),
            tag: "latest".to_string(),
            created_epoch: 0,
        }
    }

    #[test]
    fn ldd_output_gives_absolute_paths_and_names_missing_libraries() {
        let output = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x1)\n\
                      \t/lib64/ld-linux-x86-64.so.2 (0x2)\n";
        assert_eq!(
            parse_ldd(output).expect("all found"),
            [PathBuf::from("/lib/x86_64-linux-gnu/libz.so.1"), PathBuf::from("/lib64/ld-linux-x86-64.so.2")]
        );
        let missing = parse_ldd("\tlibrocksdb.so.7.8 => not found\n").expect_err("missing");
        assert!(missing.contains("librocksdb.so.7.8"), "{missing}");
    }

    #[test]
    fn the_interpreter_of_a_dynamic_executable_is_read_from_its_elf_header() {
        let ldd = std::fs::read("/usr/bin/ldd").expect("ldd exists"); // a shell script
        assert_eq!(elf_interpreter(&ldd), None);
        let env_binary = std::fs::read("/usr/bin/env").expect("env exists");
        let interpreter = elf_interpreter(&env_binary).expect("a dynamic executable");
        assert!(interpreter.starts_with('/') && interpreter.contains("ld-linux"), "{interpreter}");
        assert_eq!(elf_architecture(&env_binary), "amd64");
    }

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn tags_follow_the_docker_grammar() {
        assert!(valid_tag("latest") && valid_tag("1.0") && valid_tag("v2_rc-1"));
        assert!(!valid_tag("") && !valid_tag(".x") && !valid_tag("-x") && !valid_tag("a/b") && !valid_tag("a:b"));
    }

    #[test]
    fn the_layout_is_byte_identical_for_identical_input_and_normalized() {
        let binary = Path::new("/usr/bin/env");
        let files = runtime_files(binary).expect("ldd resolves /usr/bin/env");
        assert!(files.iter().any(|path| path.to_string_lossy().contains("libc.so")), "{files:?}");
        let first = image_layout(binary, &files, &spec()).expect("layout");
        let second = image_layout(binary, &files, &spec()).expect("layout");
        assert_eq!(first, second);
        assert_eq!(first.to_tar(), second.to_tar());

        let index: serde_json::Value = serde_json::from_slice(&first.files["index.json"]).expect("JSON");
        assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "latest");
        assert_eq!(index["manifests"][0]["digest"], first.manifest_digest.as_str());
        for (path, contents) in &first.files {
            if let Some(digest) = path.strip_prefix("blobs/sha256/") {
                assert_eq!(digest, hex_sha256(contents), "{path} is named by its digest");
            }
        }

        let layer_digest = {
            let manifest_path = format!("blobs/sha256/{}", first.manifest_digest.trim_start_matches("sha256:"));
            let manifest: serde_json::Value = serde_json::from_slice(&first.files[&manifest_path]).expect("JSON");
            manifest["layers"][0]["digest"].as_str().expect("digest").trim_start_matches("sha256:").to_string()
        };
        let layer = &first.files[&format!("blobs/sha256/{layer_digest}")];
        let mut archive = tar::Archive::new(layer.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().expect("a tar") {
            let entry = entry.expect("an entry");
            let header = entry.header();
            assert_eq!(header.mtime().expect("mtime"), 0);
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            let owner = header.uid().expect("uid");
            assert_eq!(owner, if path.starts_with("var/lib/pulse") { 65532 } else { 0 }, "{path}");
            if path.starts_with("tmp") {
                assert_eq!(header.mode().expect("mode"), 0o1777);
            }
            seen.push(path);
        }
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted, "entries are sorted");
        for expected in ["etc/passwd", "etc/group", "usr/local/bin/demo"] {
            assert!(seen.iter().any(|path| path == expected), "{expected} in {seen:?}");
        }
        for file in &files {
            let relative = file.to_string_lossy().trim_start_matches('/').to_string();
            assert!(seen.contains(&relative), "{relative} shipped");
        }
        assert!(seen.iter().any(|path| path.trim_end_matches('/') == "usr/local/bin"), "parent directories");
    }

    #[test]
    fn labels_name_the_pipeline_its_version_and_its_source() {
        let unversioned = labels(&spec());
        assert_eq!(unversioned["org.opencontainers.image.title"], "demo");
        assert_eq!(unversioned["org.opencontainers.image.version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(unversioned["io.pulse.version-source"], "pulsec");
        assert_eq!(unversioned["io.pulse.source-sha256"], hex_sha256(b"pipeline demo"));
        let versioned = labels(&ImageSpec { version: Some("1.0".to_string()), ..spec() });
        assert_eq!(versioned["org.opencontainers.image.version"], "1.0");
        assert_eq!(versioned["io.pulse.version-source"], "pipeline");
    }
}
