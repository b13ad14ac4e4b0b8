//! `pulsec k8s` end to end: the manifests of two examples (Kafka with an api-sink; file input
//! with Redis sinks) pass `kubernetes-validate --strict` against the Kubernetes OpenAPI schemas it
//! bundles (offline; installed into target/tools/venv by scripts/install-deps.sh), and the same
//! validator rejects a manifest with a wrong type or an unknown field, so these tests can fail.

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
