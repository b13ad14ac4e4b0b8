//! `pulsec k8s`: Kubernetes manifests for a pipeline image — a ConfigMap with the broker
//! settings, a headless Service (stable pod DNS names and the metrics port) and a StatefulSet
//! whose pods get stable names, hence a stable `PULSE_INSTANCE_ID` (the Kafka `transactional.id`)
//! and their own state volume at `/var/lib/pulse`.
//!
//! The manifests are built as JSON values and printed as YAML; keys come in the conventional
//! order (`apiVersion`, `kind`, `metadata`, `spec`, then alphabetical), so output is deterministic.

use crate::image::{METRICS_PORT, STATE_DIR, USER_ID};
use crate::{MessageFormat, EXIT_ERRORS, EXIT_USAGE};
use pulse_ir::{Operator, Pipeline, StateBackend};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct K8sArgs {
    /// The pipeline (`.pulse` or JSON DAG).
    pub file: PathBuf,
    /// Write one file per object into this directory (default: all objects to stdout).
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// The image reference (default: `<pipeline name>:latest`, as `pulsec image` tags it).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Pods of the StatefulSet; Kafka partitions are shared among them by the consumer group.
    #[arg(long, default_value_t = 1)]
    pub replicas: u32,
    /// The size of each pod's state volume.
    #[arg(long, default_value = "1Gi")]
    pub storage: String,
    /// The Secret holding the environment variables the pipeline's templates read (`${NAME}`),
    /// one key per variable (default: `<pipeline name>-secrets`).
    #[arg(long, value_name = "NAME")]
    pub secret: Option<String>,
    /// Build the state from history before the first start: an init container runs
    /// `<binary> bootstrap --from SOURCE` into a savepoint on the state volume (once; a restart
    /// skips it), and the pipeline starts from it. SOURCE is `kafka:TOPIC` or a path in the
    /// image or a mounted volume; repeat for several sources.
    #[arg(long = "bootstrap-from", value_name = "kafka:TOPIC|[NODE=]PATH")]
    pub bootstrap_from: Vec<String>,
}

/// What the manifests are made from, besides the pipeline.
#[derive(Clone, Debug)]
pub struct Settings {
    pub image: String,
    pub replicas: u32,
    pub storage: String,
    /// Where the pipeline came from, named in a comment.
    pub source_name: String,
    /// The Secret of the templates' environment variables; `None`: `<name>-secrets`.
    pub secret: Option<String>,
    /// `--bootstrap-from`: the history an init container bootstraps the state from.
    pub bootstrap_from: Vec<String>,
}

/// One Kubernetes object: a file name stem (`statefulset`), a leading comment and the object.
pub struct Manifest {
    pub stem: &'static str,
    pub comment: String,
    pub object: serde_json::Value,
}

pub fn command(args: K8sArgs) -> ExitCode {
    let Some(loaded) = crate::load_checked(&args.file, MessageFormat::Human) else {
        return ExitCode::from(EXIT_ERRORS);
    };
    let pipeline = loaded.pipeline.as_ref().expect("a checked file has a pipeline");
    if args.replicas == 0 {
        eprintln!("error: --replicas must be at least 1 (scale to 0 with kubectl)");
        return ExitCode::from(EXIT_USAGE);
    }
    if let Some(problem) = bootstrap_source_problem(pipeline, &args.bootstrap_from) {
        eprintln!("error: --bootstrap-from {problem}");
        return ExitCode::from(EXIT_USAGE);
    }
    if pipeline.nodes.iter().any(|node| matches!(node.op, Operator::FileSource { .. })) {
        eprintln!(
            "warning: `{}` has a file-source; in the container it reads its `path`, which must be mounted",
            pipeline.name
        );
    }
    let settings = Settings {
        image: args.image.clone().unwrap_or_else(|| format!("{}:latest", pipeline.name)),
        replicas: args.replicas,
        storage: args.storage.clone(),
        source_name: args.file.display().to_string(),
        secret: args.secret.clone(),
        bootstrap_from: args.bootstrap_from.clone(),
    };
    let manifests = manifests(pipeline, &settings);
    match &args.output {
        None => {
            print!("{}", to_yaml_stream(&manifests));
            ExitCode::SUCCESS
        }
        Some(dir) => match write_dir(dir, &manifests) {
            Ok(paths) => {
                for path in paths {
                    eprintln!("wrote {}", path.display());
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: cannot write the manifests to `{}`: {error}", dir.display());
                ExitCode::from(EXIT_ERRORS)
            }
        },
    }
}

/// What is wrong with a `--bootstrap-from` value, checked here rather than by a pod that would
/// crash-loop on it: `kafka:TOPIC` needs a valid topic, `NODE=PATH` a source node of the
/// pipeline, and any path must be one line.
fn bootstrap_source_problem(pipeline: &Pipeline, sources: &[String]) -> Option<String> {
    for source in sources {
        if let Some(topic) = source.strip_prefix("kafka:") {
            if let Some(problem) = pulse_check::topic_problem(topic) {
                return Some(format!("`{}`: {problem}", source.escape_debug()));
            }
            continue;
        }
        let (node, path) = match source.split_once('=') {
            Some((node, path)) => (Some(node), path),
            None => (None, source.as_str()),
        };
        if path.is_empty() || path.chars().any(char::is_control) {
            return Some(format!("`{}`: expected `kafka:TOPIC` or a path on one line", source.escape_debug()));
        }
        // As the binary reads it: a prefix that looks like a node id names a source.
        let node_like = |node: &&str| node.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
        if let Some(node) = node.filter(node_like) {
            let is_source = pipeline.nodes.iter().any(|candidate| candidate.id == node && candidate.op.is_source());
            if !is_source {
                return Some(format!(
                    "`{}`: `{}` is not a source of `{}`",
                    source.escape_debug(),
                    node.escape_debug(),
                    pipeline.name
                ));
            }
        }
    }
    None
}

fn write_dir(dir: &Path, manifests: &[Manifest]) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut paths = Vec::new();
    for manifest in manifests {
        let path = dir.join(format!("{}.yaml", manifest.stem));
        std::fs::write(&path, document(manifest))?;
        paths.push(path);
    }
    Ok(paths)
}

/// Every manifest as one multi-document YAML stream.
pub fn to_yaml_stream(manifests: &[Manifest]) -> String {
    manifests.iter().map(|manifest| format!("---\n{}", document(manifest))).collect()
}

fn document(manifest: &Manifest) -> String {
    // Every YAML line break (`\r`, NEL, U+2028 and U+2029 too) starts a new `#` line, and other
    // control characters are escaped, so no text in a comment becomes YAML.
    let comment: String = manifest
        .comment
        .split(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
        .map(|line| {
            let line: String = line
                .chars()
                .map(|ch| if ch.is_control() { ch.escape_debug().to_string() } else { ch.to_string() })
                .collect();
            format!("# {line}\n").replace("# \n", "#\n")
        })
        .collect();
    let yaml = serde_norway::to_string(&to_yaml(&manifest.object)).expect("a JSON value serializes as YAML");
    format!("{comment}{yaml}")
}

/// A DNS-1035 label from the pipeline name (pipeline names are `[a-z0-9_-]+`): `_` becomes `-`,
/// a leading digit gets a `p-` prefix, and it is cut to 52 characters, the longest StatefulSet
/// name whose pods' `controller-revision-hash` label still fits in 63.
pub fn object_name(pipeline_name: &str) -> String {
    let mut name: String = pipeline_name.replace('_', "-").trim_matches('-').to_string();
    if !name.starts_with(|ch: char| ch.is_ascii_lowercase()) {
        name = format!("p-{name}");
    }
    name.truncate(52);
    name.trim_end_matches('-').to_string()
}

/// The memory a pod asks for, in MiB, from what the binary holds: a base for the binary, its
/// buffers and the driver; for keyed state in RocksDB its 8 MB block cache, two 8 MB memtables
/// and the 16 MB overlay (48 MiB with headroom), or for the memory backend 256 MiB that the key
/// count may well outgrow; librdkafka's fetch queue per kafka-source (64 MB by default) and
/// producer buffers per kafka-sink.
pub fn memory_request_mib(pipeline: &Pipeline) -> u64 {
    const BASE: u64 = 64;
    let stateful = pipeline.nodes.iter().any(|node| {
        matches!(
            node.op,
            Operator::Delay { .. }
                | Operator::UserEventTrigger { .. }
                | Operator::HasDoneEvent { .. }
                | Operator::Segmentation { .. }
                | Operator::Capping { .. }
                | Operator::WindowAggregate { .. }
                | Operator::Dedupe { .. }
        )
    });
    let state = match (stateful, pipeline.runtime.state_backend) {
        (false, _) => 0,
        (true, Some(StateBackend::Memory)) => 256,
        (true, _) => 48,
    };
    let kafka: u64 = pipeline
        .nodes
        .iter()
        .map(|node| match node.op {
            Operator::KafkaSource { .. } => 64,
            Operator::KafkaSink { .. } => 32,
            _ => 0,
        })
        .sum();
    BASE + state + kafka
}

/// Seconds between SIGTERM and SIGKILL. On SIGTERM the binary finishes its step and takes a
/// last checkpoint (RocksDB batch, producer flush and the commit of the open Kafka transaction,
/// which holds up to one checkpoint interval of records): 60 s, or twice the interval when that
/// is longer, at most 10 minutes.
pub fn termination_grace_seconds(pipeline: &Pipeline) -> u64 {
    const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 10_000;
    let interval_seconds = pipeline.runtime.checkpoint_interval_ms.unwrap_or(DEFAULT_CHECKPOINT_INTERVAL_MS) / 1000;
    (2 * interval_seconds).clamp(60, 600)
}

/// The brokers the pipeline names, if any (the first kafka node that names them).
fn declared_brokers(pipeline: &Pipeline) -> Option<String> {
    pipeline.nodes.iter().find_map(|node| match &node.op {
        Operator::KafkaSource { brokers, .. } | Operator::KafkaSink { brokers, .. } => brokers.clone(),
        _ => None,
    })
}

pub fn manifests(pipeline: &Pipeline, settings: &Settings) -> Vec<Manifest> {
    let name = object_name(&pipeline.name);
    let config_name = format!("{name}-config");
    let uses_kafka =
        pipeline.nodes.iter().any(|node| matches!(node.op, Operator::KafkaSource { .. } | Operator::KafkaSink { .. }));
    let uses_redis = pipeline.nodes.iter().any(|node| matches!(node.op, Operator::RedisSink { .. }));
    let version = pipeline.version.clone().unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string());
    let labels = json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/version": label_value(&version),
        "app.kubernetes.io/part-of": "pulse",
        "app.kubernetes.io/managed-by": "pulsec",
    });
    let selector = json!({ "app.kubernetes.io/name": name, "app.kubernetes.io/instance": name });
    let upgrade_note = format!(
        "State is keyed by node id and survives image changes that keep those nodes compatible. Before \
         changing the image: check the new pipeline with `pulsec diff OLD NEW` (non-zero: incompatible \
         state), then take a savepoint in every pod with `kubectl exec {name}-N -- /usr/local/bin/{binary} \
         savepoint create --state-dir {STATE_DIR} --to {STATE_DIR}/savepoints/BEFORE-UPGRADE`; an \
         incompatible pipeline starts with `--from-savepoint` or from empty state.",
        binary = pipeline.name
    );

    let mut config_data = serde_json::Map::new();
    if uses_kafka {
        let brokers = declared_brokers(pipeline).unwrap_or_else(|| "kafka:9092".to_string());
        config_data.insert("PULSE_KAFKA_BROKERS".to_string(), json!(brokers));
    }
    if uses_redis {
        config_data.insert("PULSE_REDIS_URL".to_string(), json!("redis://redis:6379"));
    }
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": config_name, "labels": labels },
        "data": config_data,
    });

    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "clusterIP": "None",
            "selector": selector,
            "ports": [{ "name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP" }],
            // Pods get DNS names before they are ready, so a restarting pod is still reachable
            // for `kubectl exec ... savepoint create` and its metrics.
            "publishNotReadyAddresses": true,
        },
    });

    let mut env = vec![
        json!({ "name": "PULSE_INSTANCE_ID", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }),
        json!({ "name": "PULSE_STATE_DIR", "value": STATE_DIR }),
        json!({ "name": "PULSE_METRICS_ADDR", "value": format!("0.0.0.0:{METRICS_PORT}") }),
    ];
    if uses_kafka {
        env.push(json!({
            "name": "PULSE_KAFKA_BROKERS",
            "valueFrom": { "configMapKeyRef": { "name": config_name, "key": "PULSE_KAFKA_BROKERS" } },
        }));
    }
    // Every `${NAME}` of a template, from the Secret: the binary refuses to start without them.
    let secret_name = settings.secret.clone().unwrap_or_else(|| format!("{name}-secrets"));
    let secret_keys = template_env(pipeline);
    for key in &secret_keys {
        env.push(json!({
            "name": key,
            "valueFrom": { "secretKeyRef": { "name": secret_name, "key": key } },
        }));
    }
    let memory_mib = memory_request_mib(pipeline);
    let probe = |path: &str, period: u64, failures: u64| {
        json!({
            "httpGet": { "path": path, "port": METRICS_PORT },
            "initialDelaySeconds": 5,
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": failures,
        })
    };
    let volume_mounts = json!([
        { "name": "state", "mountPath": STATE_DIR },
        { "name": "tmp", "mountPath": "/tmp" },
    ]);
    let container_security = json!({
        "runAsNonRoot": true,
        "runAsUser": USER_ID,
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": { "drop": ["ALL"] },
    });
    let resources = json!({
        "requests": { "cpu": "250m", "memory": format!("{memory_mib}Mi") },
        "limits": { "memory": format!("{}Mi", 2 * memory_mib) },
    });
    // With --bootstrap-from: an init container builds the savepoint from history on the state
    // volume once (a restart finds it and skips), and the pipeline starts from it; once the
    // state directory holds a checkpoint of that run, a restart continues from the checkpoint.
    let bootstrap_savepoint = format!("{STATE_DIR}/savepoints/bootstrap.savepoint");
    let mut init_containers = Vec::new();
    let mut run_args = Vec::new();
    if !settings.bootstrap_from.is_empty() {
        let mut args = vec![json!("bootstrap")];
        for from in &settings.bootstrap_from {
            args.push(json!("--from"));
            args.push(json!(from));
        }
        args.extend([json!("--to"), json!(bootstrap_savepoint), json!("--skip-if-exists")]);
        init_containers.push(json!({
            "name": "bootstrap",
            "image": settings.image,
            "imagePullPolicy": "IfNotPresent",
            "args": args,
            "env": env,
            "envFrom": [{ "configMapRef": { "name": config_name } }],
            "resources": resources,
            "securityContext": container_security,
            "volumeMounts": volume_mounts,
        }));
        run_args = vec![json!("run"), json!("--from-savepoint"), json!(bootstrap_savepoint)];
    }
    let mut statefulset = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "io.pulse/upgrade": upgrade_note,
                "io.pulse/pipeline": pipeline.name,
            },
        },
        "spec": {
            "serviceName": name,
            "replicas": settings.replicas,
            // Pods are independent consumers of one group: start and stop them together.
            "podManagementPolicy": "Parallel",
            "updateStrategy": { "type": "RollingUpdate" },
            "selector": { "matchLabels": selector },
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": METRICS_PORT.to_string(),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "terminationGracePeriodSeconds": termination_grace_seconds(pipeline),
                    "automountServiceAccountToken": false,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": USER_ID,
                        "runAsGroup": USER_ID,
                        "fsGroup": USER_ID,
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    "containers": [{
                        "name": "pipeline",
                        "image": settings.image,
                        "imagePullPolicy": "IfNotPresent",
                        "env": env,
                        // More `PULSE_KAFKA_PROP_<NAME>` settings (SASL, TLS) can go in the ConfigMap.
                        "envFrom": [{ "configMapRef": { "name": config_name } }],
                        "ports": [{ "name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP" }],
                        "livenessProbe": probe("/healthz", 10, 6),
                        "readinessProbe": probe("/readyz", 5, 3),
                        "resources": resources,
                        "securityContext": container_security,
                        "volumeMounts": volume_mounts,
                    }],
                    "volumes": [{ "name": "tmp", "emptyDir": {} }],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": { "name": "state", "labels": selector },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": { "requests": { "storage": settings.storage } },
                },
            }],
        },
    });

    if !init_containers.is_empty() {
        let pod = &mut statefulset["spec"]["template"]["spec"];
        pod["initContainers"] = json!(init_containers);
        pod["containers"][0]["args"] = json!(run_args);
    }
    let bootstrap_note = if settings.bootstrap_from.is_empty() {
        String::new()
    } else {
        format!(
            "\nBootstrap: before the first start each pod builds its state from {} into\n`{bootstrap_savepoint}` (init container `bootstrap`, skipped once the file exists) and starts from it.",
            settings.bootstrap_from.iter().map(|from| format!("`{from}`")).collect::<Vec<_>>().join(", ")
        )
    };
    let secret_note = if secret_keys.is_empty() {
        String::new()
    } else {
        format!(
            "\nSecrets: the templates read {}, from Secret `{secret_name}` (create it first, e.g.\n`kubectl create secret generic {secret_name} {}`).",
            secret_keys.iter().map(|key| format!("`{key}`")).collect::<Vec<_>>().join(", "),
            secret_keys.iter().map(|key| format!("--from-literal={key}=...")).collect::<Vec<_>>().join(" ")
        )
    };
    let groups = consumer_groups(pipeline);
    let group_note = if groups.is_empty() {
        String::new()
    } else {
        format!("\nConsumer groups (shared by every pod): {}.", groups.join(", "))
    };
    let header = format!(
        "Generated by `pulsec k8s` from {} (pipeline `{}`, version {version}).",
        settings.source_name, pipeline.name
    );
    vec![
        Manifest {
            stem: "configmap",
            comment: format!(
                "{header}\nBroker (and Redis) settings of the pipeline; `PULSE_KAFKA_PROP_<NAME>` keys added here\nreach librdkafka (e.g. PULSE_KAFKA_PROP_SECURITY_PROTOCOL)."
            ),
            object: config_map,
        },
        Manifest {
            stem: "service",
            comment: format!("{header}\nHeadless: stable pod DNS names for the StatefulSet, and the metrics port."),
            object: service,
        },
        Manifest {
            stem: "statefulset",
            comment: format!(
                "{header}\nMemory request {memory_mib}Mi: a base for the binary, RocksDB's cache and memtables for keyed\nstate, librdkafka's queues per Kafka node; see docs/operations.md.{group_note}{secret_note}{bootstrap_note}\nUpgrades: {}",
                wrap(&upgrade_note, 90).join("\n")
            ),
            object: statefulset,
        },
    ]
}

/// Environment variables the pipeline's templates read, in order of first use.
fn template_env(pipeline: &Pipeline) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for node in &pipeline.nodes {
        for name in pulse_codegen::template_env(&node.op) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// Each kafka-source's consumer group as the binary chooses it: its `groupId`, else
/// `pulse-<pipeline>-<node>` (`PULSE_KAFKA_GROUP_ID`, which would override both, is not set).
fn consumer_groups(pipeline: &Pipeline) -> Vec<String> {
    pipeline
        .nodes
        .iter()
        .filter_map(|node| match &node.op {
            Operator::KafkaSource { group_id: Some(group), .. } => Some(format!("`{group}` (source `{}`)", node.id)),
            Operator::KafkaSource { group_id: None, .. } => {
                Some(format!("`pulse-{}-{}` (source `{}`)", pipeline.name, node.id, node.id))
            }
            _ => None,
        })
        .collect()
}

/// A label value: at most 63 characters of `[A-Za-z0-9_.-]`, alphanumeric at both ends.
fn label_value(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|ch| if ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-') { ch } else { '-' })
        .take(63)
        .collect();
    cleaned.trim_matches(|ch: char| !ch.is_ascii_alphanumeric()).to_string()
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("lines is never empty");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

/// Keys that read best first, in this order; the rest follow alphabetically.
const KEY_ORDER: &[&str] = &["apiVersion", "kind", "metadata", "name", "data", "spec"];

fn to_yaml(value: &serde_json::Value) -> serde_norway::Value {
    use serde_norway::Value as Yaml;
    match value {
        serde_json::Value::Null => Yaml::Null,
        serde_json::Value::Bool(flag) => Yaml::Bool(*flag),
        serde_json::Value::Number(number) => match (number.as_u64(), number.as_i64()) {
            (Some(unsigned), _) => Yaml::Number(unsigned.into()),
            (None, Some(signed)) => Yaml::Number(signed.into()),
            (None, None) => Yaml::Number(number.as_f64().unwrap_or_default().into()),
        },
        serde_json::Value::String(text) => Yaml::String(text.clone()),
        serde_json::Value::Array(items) => Yaml::Sequence(items.iter().map(to_yaml).collect()),
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|key| (KEY_ORDER.iter().position(|first| first == key).unwrap_or(KEY_ORDER.len()), *key));
            let mut mapping = serde_norway::Mapping::new();
            for key in keys {
                mapping.insert(Yaml::String(key.clone()), to_yaml(&map[key]));
            }
            Yaml::Mapping(mapping)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(text: &str) -> Pipeline {
        let loaded =
            crate::load::load_text("k8s.pulse", text.to_string(), &|_| Err(std::io::ErrorKind::NotFound.into()));
        loaded.pipeline.unwrap_or_else(|| panic!("does not check: {:?}", loaded.diagnostics))
    }

    const KAFKA_PIPELINE: &str = r#"
pipeline orders_2
runtime { checkpointInterval: 2m }
event { userId: string, ts: timestamp }
events: kafka-source("orders") { brokers: "b1:9092" }
events -> once: dedupe(1h) by userId -> out: kafka-sink("orders-out")
"#;

    fn settings() -> Settings {
        Settings {
            image: "registry.example/orders:1".to_string(),
            replicas: 3,
            storage: "2Gi".to_string(),
            source_name: "k8s.pulse".to_string(),
            secret: None,
            bootstrap_from: Vec::new(),
        }
    }

    #[test]
    fn a_source_name_with_yaml_line_breaks_stays_in_the_comment() {
        let hostile =
            Settings { source_name: "a\rkind: Secret\u{2028}metadata: {}\u{85}x\u{7}.pulse".to_string(), ..settings() };
        let stream = to_yaml_stream(&manifests(&pipeline(KAFKA_PIPELINE), &hostile));
        for line in stream.split(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']) {
            assert!(!line.starts_with("kind: Secret") && !line.starts_with("metadata: {}"), "{line:?} in\n{stream}");
        }
        assert!(stream.contains("x\\u{7}.pulse") && !stream.contains('\u{7}'), "the bell is escaped: {stream}");
        assert_eq!(documents(&stream).len(), 3);
    }

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(object_name("welcome-message-d0"), "welcome-message-d0");
        assert_eq!(object_name("orders_2"), "orders-2");
        assert_eq!(object_name("2fast"), "p-2fast");
        assert_eq!(object_name(&"a".repeat(80)).len(), 52);
    }

    #[test]
    fn the_statefulset_has_stable_identity_state_probes_and_a_grace_period() {
        let pipeline = pipeline(KAFKA_PIPELINE);
        let manifests = manifests(&pipeline, &settings());
        let kinds: Vec<&str> =
            manifests.iter().map(|manifest| manifest.object["kind"].as_str().expect("kind")).collect();
        assert_eq!(kinds, ["ConfigMap", "Service", "StatefulSet"]);
        let statefulset = &manifests[2].object;
        assert_eq!(statefulset["spec"]["replicas"], 3);
        assert_eq!(statefulset["spec"]["serviceName"], "orders-2");
        let pod = &statefulset["spec"]["template"]["spec"];
        assert_eq!(pod["terminationGracePeriodSeconds"], 240, "twice the 2m checkpoint interval");
        let container = &pod["containers"][0];
        assert_eq!(container["image"], "registry.example/orders:1");
        let env = container["env"].as_array().expect("env");
        let variable = |name: &str| env.iter().find(|item| item["name"] == name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(variable("PULSE_INSTANCE_ID")["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
        assert!(env.iter().all(|item| item["name"] != "PULSE_KAFKA_GROUP_ID"), "the binary keeps its groups");
        assert!(manifests[2].comment.contains("Consumer groups (shared by every pod): `pulse-orders_2-events`"));
        assert_eq!(variable("PULSE_KAFKA_BROKERS")["valueFrom"]["configMapKeyRef"]["name"], "orders-2-config");
        assert_eq!(manifests[0].object["data"]["PULSE_KAFKA_BROKERS"], "b1:9092");
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(container["readinessProbe"]["httpGet"]["port"], 9464);
        assert_eq!(container["resources"]["requests"]["memory"], "208Mi", "64 + 48 + 64 + 32");
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"], "2Gi");
        assert_eq!(statefulset["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"], "9464");
    }

    #[test]
    fn yaml_puts_the_conventional_keys_first_and_quotes_strings_that_look_like_other_types() {
        let manifests = manifests(&pipeline(KAFKA_PIPELINE), &settings());
        let stream = to_yaml_stream(&manifests);
        assert_eq!(documents(&stream).len(), 3);
        let statefulset = stream.split("---\n").nth(3).expect("third document");
        let first_keys: Vec<&str> = statefulset
            .lines()
            .filter(|line| !line.starts_with('#') && !line.starts_with(' '))
            .map(|line| line.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(first_keys, ["apiVersion", "kind", "metadata", "spec"]);
        assert!(stream.contains("prometheus.io/scrape: 'true'"), "{stream}");
        assert!(stream.contains("prometheus.io/port: '9464'"), "{stream}");
        // Read back, the YAML is the same objects.
        for (document, manifest) in documents(&stream).iter().zip(&manifests) {
            assert_eq!(document, &manifest.object);
        }
    }

    fn documents(stream: &str) -> Vec<serde_json::Value> {
        stream
            .split("---\n")
            .filter(|document| !document.trim().is_empty())
            .map(|document| serde_norway::from_str(document).expect("valid YAML"))
            .collect()
    }
}
