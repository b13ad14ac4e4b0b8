//! The templates of the network sinks, and what they read: the field paths (added to the
//! sink's input view) and the environment variables (checked at start-up).

use pulse_ir::{Operator, Path, Template, TemplatePart, TemplateValue};

/// Every template of a sink, in order: redis key, field, value, score; api url, headers, body;
/// kafka key, value.
pub fn templates(operator: &Operator) -> Vec<&Template> {
    fn body_templates<'t>(value: &'t TemplateValue, out: &mut Vec<&'t Template>) {
        match value {
            TemplateValue::String(template) => out.push(template),
            TemplateValue::Array(items) => items.iter().for_each(|item| body_templates(item, out)),
            TemplateValue::Object(members) => members.iter().for_each(|(_, item)| body_templates(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match operator {
        Operator::KafkaSink { key, value, .. } => out.extend([key, value].into_iter().flatten()),
        Operator::RedisSink { key, field, value, score, .. } => {
            out.push(key);
            out.extend([field, value, score].into_iter().flatten());
        }
        Operator::ApiSink { url, headers, body, .. } => {
            out.push(url);
            out.extend(headers.iter().map(|(_, template)| template));
            if let Some(body) = body {
                body_templates(body, &mut out);
            }
        }
        _ => {}
    }
    out
}

/// Field paths the templates of a sink read (added to its input view).
pub fn template_paths(operator: &Operator, out: &mut Vec<Path>) {
    for template in templates(operator) {
        for part in &template.parts {
            if let TemplatePart::Field(path) = part {
                out.push(path.clone());
            }
        }
    }
}

/// Environment variables the templates of a sink read, in order of first use.
pub fn template_env(operator: &Operator) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for template in templates(operator) {
        for part in &template.parts {
            if let TemplatePart::Env(name) = part {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
    }
    names
}
