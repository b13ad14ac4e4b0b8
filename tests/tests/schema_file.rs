//! Event schemas from a JSON Schema file: fields and nullability come from the file, and a
//! reference to an undeclared field is an error with a span in the pipeline.

use pulse_ir::{FieldType, Type};
use pulsec::load::load_text;
use std::path::Path;

fn load(source: &str) -> pulsec::load::Loaded {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    load_text("pipeline.pulse", source.to_string(), &move |relative: &str| {
        std::fs::read_to_string(fixtures.join(relative))
    })
}

const PIPELINE: &str = r#"pipeline schema-file
schema "events.schema.json"

src: file-source("events.jsonl") {
  eventTime: ts
}

src -> big: filter(props.amount >= 50 && userId != null) -> out: stdout-sink
"#;

#[test]
fn a_json_schema_file_types_the_events() {
    let loaded = load(PIPELINE);
    let rendered = pulsec::render::human(&loaded.sources, &loaded.diagnostics, false);
    let pipeline = loaded.pipeline.unwrap_or_else(|| panic!("{rendered}"));
    let schema = pipeline.schema.expect("schema from the file");
    assert_eq!(schema.order, ["event_name", "userId", "ts", "props"]);
    assert_eq!(schema.fields["event_name"], FieldType { ty: Type::String, nullable: false });
    assert_eq!(schema.fields["userId"], FieldType { ty: Type::String, nullable: true });
    assert_eq!(schema.fields["ts"], FieldType { ty: Type::Timestamp, nullable: false });
    let Type::Object(Some(props)) = &schema.fields["props"].ty else { panic!("props is a nested record") };
    assert!(schema.fields["props"].nullable, "props is not required");
    assert_eq!(props.fields["amount"], FieldType { ty: Type::Float, nullable: true });
}

#[test]
fn an_undeclared_field_is_reported_in_the_pipeline_file() {
    let loaded = load(&PIPELINE.replace("props.amount", "props.amout"));
    assert!(loaded.pipeline.is_none());
    let errors: Vec<_> = loaded.diagnostics.iter().filter(|diagnostic| diagnostic.is_error()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].code.as_str(), "E0205");
    assert_eq!(errors[0].help.as_deref(), Some("did you mean `amount`?"));
    let span = errors[0].primary_span().expect("span");
    assert_eq!(loaded.sources.get(span.file).name, "pipeline.pulse");
    assert_eq!(loaded.sources.text(span), "props.amout");
}

#[test]
fn a_bad_json_schema_is_reported_in_the_schema_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bad.schema.json"), r##"{"type": "object", "properties": {"a": {"$ref": "#/x"}}}"##)
        .expect("write");
    let base = dir.path().to_path_buf();
    let loaded = load_text(
        "pipeline.pulse",
        PIPELINE.replace("events.schema.json", "bad.schema.json"),
        &move |relative: &str| std::fs::read_to_string(base.join(relative)),
    );
    let error = loaded.diagnostics.iter().find(|diagnostic| diagnostic.code.as_str() == "E0307").expect("E0307");
    let span = error.primary_span().expect("span");
    assert_eq!(loaded.sources.get(span.file).name, "bad.schema.json");
}
