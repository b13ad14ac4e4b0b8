//! Top-level settings: `name`, `description`, `version`, `schema` and `runtime`.

use crate::values::{self, Fields, Zero};
use crate::{schema, CheckOptions, Cx};
use pulse_ir::{ReadSetting, RecordType, RuntimeSettings, StateBackend};
use pulse_syntax::ast::Document;
use pulse_syntax::codes::{E0101, E0102, E0105, E0307};
use pulse_syntax::diagnostic::did_you_mean;
use pulse_syntax::Diagnostic;

pub struct Settings {
    pub name: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub schema: Option<RecordType>,
    pub runtime: RuntimeSettings,
}

const TOP_LEVEL_KEYS: &[&str] = &["name", "description", "version", "schema", "runtime", "nodes", "edges", "tests"];
const RUNTIME_KEYS: &[&str] = &["checkpointInterval", "stateBackend", "restartStrategy", "readSetting"];
pub const READ_SETTINGS: &[&str] = &["group-offsets", "earliest", "latest"];

pub fn check_settings(cx: &mut Cx, doc: &Document, options: CheckOptions<'_>) -> Settings {
    for member in &doc.settings {
        if !TOP_LEVEL_KEYS.contains(&member.key.node.as_str()) {
            let mut diagnostic = Diagnostic::new(E0101, format!("unknown top-level key `{}`", member.key.node))
                .primary(member.key.span, "unknown key")
                .note(format!("expected one of {}", values::list(TOP_LEVEL_KEYS)));
            if let Some(suggestion) = did_you_mean(&member.key.node, TOP_LEVEL_KEYS.iter().copied()) {
                diagnostic = diagnostic.did_you_mean(member.key.span, suggestion);
            }
            cx.report(diagnostic);
        }
    }

    let name = match doc.setting("name") {
        Some(value) => values::string(cx, value, "the pipeline `name`").and_then(|name| {
            if let Some(problem) = values::pipeline_name_problem(&name) {
                let cleaned: String = name
                    .to_ascii_lowercase()
                    .chars()
                    .map(|ch| if ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' { ch } else { '-' })
                    .take(63)
                    .collect();
                let cleaned = cleaned.trim_matches(['-', '_']);
                let suggestion = if cleaned.starts_with(|ch: char| ch.is_ascii_lowercase())
                    && values::pipeline_name_problem(cleaned).is_none()
                {
                    cleaned.to_string()
                } else {
                    format!("pipeline-{}", cleaned.trim_start_matches(|ch: char| !ch.is_ascii_alphanumeric()))
                };
                let shown: String = name.escape_debug().take(80).collect();
                let mut diagnostic = Diagnostic::new(E0105, format!("invalid pipeline name `{shown}`"))
                    .primary(value.span, problem)
                    .note("the name names the binary, its crate, its state and its Kubernetes objects");
                if values::pipeline_name_problem(&suggestion).is_none() {
                    diagnostic = diagnostic.help(format!("rename it to `{suggestion}`"));
                }
                cx.report(diagnostic);
                return None;
            }
            Some(name)
        }),
        // A `pipeline` item that did not parse has reported its own error.
        None if doc.unparsed_setting("name") => None,
        None => {
            cx.report(
                Diagnostic::new(E0102, "the pipeline has no `name`")
                    .primary(pulse_syntax::Span { end: doc.span.start, ..doc.span }, "`name` is required")
                    .help("add `\"name\": \"my-pipeline\"` (JSON) or `pipeline my-pipeline` (.pulse)"),
            );
            None
        }
    };
    let description = doc.setting("description").and_then(|value| values::string(cx, value, "`description`"));
    let version = doc.setting("version").and_then(|value| {
        let version = values::string(cx, value, "`version`")?;
        if values::has_line_breaking_chars(&version) || version.len() > 128 {
            cx.report(
                Diagnostic::new(E0105, "invalid pipeline `version`")
                    .primary(value.span, "a version is one line of at most 128 characters, without control characters")
                    .note("the version is written into labels, comments and logs"),
            );
            return None;
        }
        Some(version)
    });

    let schema = doc.setting("schema").and_then(|value| match value.as_str() {
        Some(path) => match options.external_schema {
            Some((file, text)) => {
                let (converted, diagnostics) = pulse_syntax::json::json_schema_to_schema(file, text);
                cx.diags.extend(diagnostics);
                converted.and_then(|converted| schema::check_schema(cx, &converted))
            }
            None if options.external_schema_unreadable => None,
            None => {
                cx.report(
                    Diagnostic::new(E0307, format!("the JSON Schema file `{path}` was not loaded"))
                        .primary(value.span, "schema file referenced here"),
                );
                None
            }
        },
        None => schema::check_schema(cx, value),
    });

    let mut runtime = RuntimeSettings::default();
    if let Some(value) = doc.setting("runtime") {
        if let Some(fields) = Fields::new(cx, value, RUNTIME_KEYS, "`runtime`") {
            if let Some(value) = fields.get("checkpointInterval") {
                runtime.checkpoint_interval_ms = values::duration(cx, value, Zero::Allowed, "`checkpointInterval`");
            }
            if let Some(value) = fields.get("stateBackend") {
                runtime.state_backend = values::choice(cx, value, &["rocksdb", "memory"], "state backend")
                    .map(|idx| [StateBackend::RocksDb, StateBackend::Memory][idx]);
            }
            if let Some(value) = fields.get("restartStrategy") {
                runtime.restart_strategy =
                    values::choice(cx, value, &["exponential", "fixed-delay", "none"], "restart strategy")
                        .map(|idx| ["exponential", "fixed-delay", "none"][idx].to_string());
            }
            if let Some(value) = fields.get("readSetting") {
                runtime.read_setting = read_setting(cx, value);
            }
        }
    }
    Settings { name, description, version, schema, runtime }
}

pub fn read_setting(cx: &mut Cx, value: &pulse_syntax::ast::Value) -> Option<ReadSetting> {
    values::choice(cx, value, READ_SETTINGS, "read setting")
        .map(|idx| [ReadSetting::GroupOffsets, ReadSetting::Earliest, ReadSetting::Latest][idx])
}
