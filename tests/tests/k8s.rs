//! `pulsec k8s` end to end: the manifests of two examples (Kafka with an api-sink; file input
//! with Redis sinks) pass `kubernetes-validate --strict` against the Kubernetes OpenAPI schemas it
//! bundles (offline; installed into target/tools/venv by scripts/install-deps.sh), and the same
//! validator rejects a manifest with a wrong type or an unknown field, so these tests can fail.

mod build;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace exists")
}

/// `kubernetes-validate` from the tools venv (or `$PULSE_KUBERNETES_VALIDATE`).
fn validator() -> PathBuf {
    let path = match std::env::var_os("PULSE_KUBERNETES_VALIDATE") {
        Some(path) => PathBuf::from(path),
        None => workspace().join("target/tools/venv/bin/kubernetes-validate"),
    };
    assert!(path.is_file(), "{} is not installed: run scripts/install-deps.sh", path.display());
    path
}

/// The oldest and the newest Kubernetes versions whose schemas the manifests must pass.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

fn validate(files: &[PathBuf], kubernetes_version: &str) -> Output {
    Command::new(validator())
        .args(["--strict", "--kubernetes-version", kubernetes_version])
        .args(files)
        .output()
        .expect("kubernetes-validate runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// `pulsec k8s EXAMPLE -o DIR ARGS...`: the written files, sorted.
fn manifests(example: &str, dir: &Path, args: &[&str]) -> Vec<PathBuf> {
    let mut argv: Vec<OsString> = vec!["pulsec".into(), "k8s".into()];
    argv.push(workspace().join("examples").join(example).join("pipeline.pulse").into());
    argv.push("-o".into());
    argv.push(dir.into());
    argv.extend(args.iter().map(OsString::from));
    assert_eq!(pulsec::main_with_args(argv), ExitCode::SUCCESS, "pulsec k8s {example} failed");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("output dir").map(|entry| entry.expect("entry").path()).collect();
    files.sort();
    files
}

fn read_yaml(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn manifests_of_two_examples_pass_the_kubernetes_schemas() {
    for (example, args) in [
        ("welcome", &["--replicas", "3", "--image", "registry.example/pulse/welcome:1.0"][..]),
        ("user-profile", &[][..]),
        ("cart-abandonment", &["--secret", "growth-api"][..]),
        ("welcome", &["--bootstrap-from", "kafka:logins-history"][..]),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = manifests(example, dir.path(), args);
        let names: Vec<String> =
            files.iter().map(|path| path.file_name().expect("name").to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["configmap.yaml", "service.yaml", "statefulset.yaml"]);
        for version in KUBERNETES_VERSIONS {
            let output = validate(&files, version);
            assert!(
                output.status.success(),
                "{example}: kubernetes-validate {version} rejected the manifests:\n{}",
                text(&output)
            );
            assert_eq!(text(&output).matches("passed").count(), 3, "{}", text(&output));
        }
    }
}

#[test]
fn the_statefulset_names_its_instances_after_the_pods_and_keeps_state_on_a_volume() {
    let dir = tempfile::tempdir().expect("temp dir");
    manifests("welcome", dir.path(), &["--replicas", "3"]);
    let statefulset = read_yaml(&dir.path().join("statefulset.yaml"));
    assert_eq!(statefulset["spec"]["replicas"], 3);
    let service = read_yaml(&dir.path().join("service.yaml"));
    assert_eq!(service["spec"]["clusterIP"], "None", "headless");
    assert_eq!(statefulset["spec"]["serviceName"], service["metadata"]["name"]);
    let pod = &statefulset["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let env = container["env"].as_array().expect("env");
    let variable = |name: &str| env.iter().find(|item| item["name"] == name).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(variable("PULSE_INSTANCE_ID")["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
    // The source's own `groupId` stands: nothing overrides it.
    assert!(env.iter().all(|item| item["name"] != "PULSE_KAFKA_GROUP_ID"), "{env:?}");
    let comment = std::fs::read_to_string(dir.path().join("statefulset.yaml")).expect("statefulset");
    assert!(comment.contains("Consumer groups (shared by every pod): `welcome-d0-prod`"), "{comment}");
    assert_eq!(variable("PULSE_STATE_DIR")["value"], "/var/lib/pulse");
    assert_eq!(variable("PULSE_METRICS_ADDR")["value"], "0.0.0.0:9464");
    let config_map = read_yaml(&dir.path().join("configmap.yaml"));
    let key_ref = &variable("PULSE_KAFKA_BROKERS")["valueFrom"]["configMapKeyRef"];
    assert_eq!(key_ref["name"], config_map["metadata"]["name"]);
    assert_eq!(config_map["data"]["PULSE_KAFKA_BROKERS"], "broker1:9092,broker2:9092,broker3:9092");
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/var/lib/pulse");
    assert_eq!(
        container["volumeMounts"][0]["name"], statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "the state volume is the claim template"
    );
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    let annotations = &statefulset["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "9464");
    // checkpointInterval 2m: twice that for the last checkpoint.
    assert_eq!(pod["terminationGracePeriodSeconds"], 240);
    let upgrade = statefulset["metadata"]["annotations"]["io.pulse/upgrade"].as_str().expect("upgrade note");
    assert!(upgrade.contains("savepoint create --state-dir /var/lib/pulse") && upgrade.contains("pulsec diff"));
}

#[test]
fn the_validator_rejects_a_wrong_type_and_an_unknown_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    manifests("welcome", dir.path(), &[]);
    let valid = std::fs::read_to_string(dir.path().join("statefulset.yaml")).expect("statefulset");
    for (broken, why) in [
        (valid.replace("replicas: 1\n", "replicas: one\n"), "a string where an integer belongs"),
        (valid.replace("serviceName:", "serviceNaem:"), "a misspelt field"),
    ] {
        assert_ne!(broken, valid, "the test edits the manifest");
        let path = dir.path().join("broken.yaml");
        std::fs::write(&path, broken).expect("write");
        let output = validate(&[path], KUBERNETES_VERSIONS[1]);
        assert!(!output.status.success(), "kubernetes-validate accepted {why}:\n{}", text(&output));
    }
}

#[test]
fn every_environment_variable_a_template_reads_comes_from_the_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    manifests("cart-abandonment", dir.path(), &[]);
    let statefulset = read_yaml(&dir.path().join("statefulset.yaml"));
    let env = statefulset["spec"]["template"]["spec"]["containers"][0]["env"].as_array().expect("env").clone();
    let text = std::fs::read_to_string(workspace().join("examples/cart-abandonment/pipeline.pulse")).expect("pipeline");
    let mut wanted: Vec<&str> = text.split("${").skip(1).filter_map(|rest| rest.split('}').next()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    assert!(!wanted.is_empty());
    for name in wanted {
        let item =
            env.iter().find(|item| item["name"] == name).unwrap_or_else(|| panic!("{name} is not wired: {env:?}"));
        assert_eq!(item["valueFrom"]["secretKeyRef"]["name"], "cart-abandonment-secrets", "{name}");
        assert_eq!(item["valueFrom"]["secretKeyRef"]["key"], name);
    }
    let comment = std::fs::read_to_string(dir.path().join("statefulset.yaml")).expect("statefulset");
    assert!(comment.contains("kubectl create secret generic cart-abandonment-secrets"), "{comment}");
}

/// `--bootstrap-from`: an init container bootstraps the state from history into a savepoint on
/// the state volume, and the pipeline starts from it. Run as the pod would run them, with the
/// manifest's own arguments against the real binary (the state volume a temporary directory):
/// the first start bootstraps and continues from the savepoint, a restart skips the bootstrap
/// and continues from its checkpoint, and the output equals one run over history and live
/// events together.
#[test]
fn bootstrap_from_history_runs_once_in_an_init_container_and_the_pipeline_starts_from_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let manifest_dir = dir.join("manifests");
    manifests("user-profile", &manifest_dir, &["--bootstrap-from", "history.jsonl"]);
    let statefulset = read_yaml(&manifest_dir.join("statefulset.yaml"));
    let pod = &statefulset["spec"]["template"]["spec"];
    let init = &pod["initContainers"][0];
    let container = &pod["containers"][0];
    assert_eq!(init["image"], container["image"]);
    assert_eq!(init["env"], container["env"], "the init container sees the pipeline's settings and secrets");
    assert_eq!(init["volumeMounts"], container["volumeMounts"]);
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value.as_array().expect("args").iter().map(|arg| arg.as_str().expect("a string").to_string()).collect()
    };
    let savepoint = "/var/lib/pulse/savepoints/bootstrap.savepoint";
    assert_eq!(strings(&init["args"]), ["bootstrap", "--from", "history.jsonl", "--to", savepoint, "--skip-if-exists"]);
    assert_eq!(strings(&container["args"]), ["run", "--from-savepoint", savepoint]);
    let comment = std::fs::read_to_string(manifest_dir.join("statefulset.yaml")).expect("statefulset");
    assert!(comment.contains("Bootstrap: before the first start"), "{comment}");

    // The pod, with the state volume at `volume`.
    let example = workspace().join("examples/user-profile");
    let binary = build::build_example(&example);
    let lines: Vec<String> =
        std::fs::read_to_string(example.join("input.jsonl")).expect("input").lines().map(str::to_string).collect();
    let (history, live) = lines.split_at(lines.len() / 2);
    let write = |name: &str, lines: &[String]| {
        std::fs::write(dir.join(name), lines.iter().map(|line| format!("{line}\n")).collect::<String>()).expect("write")
    };
    write("history.jsonl", history);
    write("live.jsonl", live);
    write("all.jsonl", &lines);
    let volume = dir.join("volume");
    let run = |args: &[String], extra: &[&str]| {
        let args: Vec<String> =
            args.iter().map(|arg| arg.replace("/var/lib/pulse", &volume.to_string_lossy())).collect();
        let output = Command::new(&binary)
            .current_dir(dir)
            .args(&args)
            .args(extra)
            .env("PULSE_STATE_DIR", volume.join("state"))
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{args:?}: {stderr}");
        stderr
    };
    let init_args = strings(&init["args"]);
    let run_args = strings(&container["args"]);
    run(&init_args, &[]);
    let bootstrapped = std::fs::read(volume.join("savepoints/bootstrap.savepoint")).expect("the savepoint");
    run(&run_args, &["--input", "live.jsonl", "--output", "out"]);
    // A restart: the init container finds the savepoint, the pipeline its checkpoint.
    let again = run(&init_args, &[]);
    assert!(again.contains("nothing to bootstrap"), "{again}");
    assert_eq!(std::fs::read(volume.join("savepoints/bootstrap.savepoint")).expect("savepoint"), bootstrapped);
    run(&run_args, &["--input", "live.jsonl", "--output", "out"]);

    let whole = Command::new(&binary)
        .current_dir(dir)
        .args(["--input", "all.jsonl", "--output", "whole", "--state-dir", "whole-state"])
        .output()
        .expect("the binary runs");
    assert!(whole.status.success());
    let prefix = Command::new(&binary)
        .current_dir(dir)
        .args(["--input", "all.jsonl", "--output", "prefix", "--state-dir", "prefix-state"])
        .arg("--stop-after")
        .arg(history.len().to_string())
        .output()
        .expect("the binary runs");
    assert!(prefix.status.success());
    let mut compared = 0;
    for entry in std::fs::read_dir(dir.join("whole")).expect("whole run") {
        let name = entry.expect("entry").file_name();
        if name.to_string_lossy().starts_with('_') {
            continue;
        }
        let read = |run: &str| std::fs::read_to_string(dir.join(run).join(&name)).unwrap_or_default();
        let (whole, prefix, live) = (read("whole"), read("prefix"), read("out"));
        assert!(whole.starts_with(&prefix), "{name:?}");
        assert_eq!(live, whole[prefix.len()..], "{name:?}: the pod's output after bootstrap and a restart");
        compared += 1;
    }
    assert!(compared > 0, "no sink output to compare");
}
