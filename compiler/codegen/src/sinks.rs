//! Code for the network sinks: templates rendered from the record's view, then one call into
//! the runtime's client. Under `--output` (`!cx.sink_live`) the templates are rendered as live
//! (a failure dead-letters the record as live), then the event goes to the sink's file and what
//! the sink would send to its preview file; a value from the environment shows as `***` there
//! (`${NAME}` in a URL), never as the secret.

use crate::segments::{access, ViewTree};
use crate::Generator;
use proc_macro2::TokenStream;
use pulse_ir::{NodeIdx, Operator, RedisCommand, Template, TemplatePart, TemplateValue};
use quote::{format_ident, quote};

pub use crate::templates::template_env;
use crate::templates::templates;

/// How inserted field text is written.
#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Plain,
    /// Percent-encoded (URLs); in a preview an environment value shows as `${NAME}`.
    Url,
}

impl Generator<'_> {
    /// The field of `Pipeline` holding environment variable `name`, read once at start-up.
    pub(crate) fn env_field(&mut self, name: &str) -> proc_macro2::Ident {
        let idx = match self.envs.iter().position(|known| known == name) {
            Some(idx) => idx,
            None => {
                self.envs.push(name.to_string());
                self.envs.len() - 1
            }
        };
        format_ident!("env_{}", idx)
    }

    /// The index of the node `id` (a sink rendering a template).
    fn node_index(&self, id: &str) -> usize {
        self.pipeline
            .nodes
            .iter()
            .position(|node| node.id == id)
            .expect("templates are rendered only for the nodes of this pipeline")
    }

    /// `let mut <out> = String::new();` followed by the template's parts. A field that is null or
    /// absent dead-letters the record (nothing half-rendered is ever sent).
    fn render(&mut self, template: &Template, tree: &ViewTree, out: &proc_macro2::Ident, node_id: &str) -> TokenStream {
        self.render_as(template, tree, out, node_id, Encoding::Plain)
    }

    fn render_as(
        &mut self,
        template: &Template,
        tree: &ViewTree,
        out: &proc_macro2::Ident,
        node_id: &str,
        encoding: Encoding,
    ) -> TokenStream {
        let mut steps = Vec::new();
        for part in &template.parts {
            steps.push(match part {
                TemplatePart::Text(text) => quote! { #out.push_str(#text); },
                TemplatePart::Env(name) => {
                    let field = self.env_field(name);
                    // `live` is false under `--output`: the preview never holds the secret.
                    let shown = match encoding {
                        Encoding::Plain => "***".to_string(),
                        Encoding::Url => format!("${{{name}}}"),
                    };
                    quote! { #out.push_str(if live { &self.#field } else { #shown }); }
                }
                TemplatePart::Field(path) => {
                    let value = access(quote! { view }, tree, &path.0);
                    let push = match encoding {
                        Encoding::Plain => quote! { #out.push_str(&pulse_runtime::generated::text::text_form(value)); },
                        Encoding::Url => quote! {
                            pulse_runtime::generated::push_url_encoded(&mut #out, &pulse_runtime::generated::text::text_form(value));
                        },
                    };
                    let reason = format!("template: field `{}` is null at node `{node_id}`", path.dotted());
                    let node_idx = self.node_index(node_id);
                    quote! {
                        let value = #value;
                        if value.is_null() {
                            cx.dead_letter_at(#node_idx, #reason, DeadEvent::Json(Cow::Borrowed(record.text)));
                            return;
                        }
                        #push
                    }
                }
            });
        }
        quote! {
            let mut #out = String::new();
            #(#steps)*
        }
    }

    /// The body of a kafka-sink node: key and value rendered (the value defaults to the event).
    pub(crate) fn kafka_body(&mut self, idx: NodeIdx, tree: &ViewTree) -> TokenStream {
        let node = &self.pipeline.nodes[idx];
        let Operator::KafkaSink { key, value, .. } = &node.op else {
            unreachable!("node_body calls kafka_body only for a kafka-sink")
        };
        let node_id = node.id.as_str();
        let sink = self.sink_index[&idx];
        let mut renders = Vec::new();
        let key_arg = match key {
            Some(template) => {
                renders.push(self.render(template, tree, &format_ident!("t_key"), node_id));
                quote! { Some(t_key.as_str()) }
            }
            None => quote! { None },
        };
        let value_arg = match value {
            Some(template) => {
                renders.push(self.render(template, tree, &format_ident!("t_value"), node_id));
                quote! { t_value.as_str() }
            }
            None => quote! { record.text },
        };
        quote! {
            let live = cx.sink_live(#sink);
            #(#renders)*
            if !live {
                cx.emit(#sink, record.event_time, record.text);
                cx.preview_kafka(#sink, record.event_time, #key_arg, #value_arg);
                return;
            }
            cx.kafka(#sink, #key_arg, #value_arg);
        }
    }

    /// The body of a redis-sink node.
    pub(crate) fn redis_body(&mut self, idx: NodeIdx, tree: &ViewTree) -> TokenStream {
        let node = &self.pipeline.nodes[idx];
        let Operator::RedisSink { command, key, field, value, score, .. } = &node.op else {
            unreachable!("node_body calls redis_body only for a redis-sink")
        };
        let node_id = node.id.as_str();
        let sink = self.sink_index[&idx];
        let mut renders = vec![self.render(key, tree, &format_ident!("t_key"), node_id)];
        let template_arg = |generator: &mut Self,
                            renders: &mut Vec<TokenStream>,
                            template: &Option<Template>,
                            name: &str| match template {
            Some(template) => {
                let ident = format_ident!("t_{}", name);
                renders.push(generator.render(template, tree, &ident, node_id));
                quote! { #ident.as_str() }
            }
            None => quote! { record.text },
        };
        let args = match command {
            RedisCommand::HSet => match field {
                Some(_) => {
                    let field_arg = template_arg(self, &mut renders, field, "field");
                    let value_arg = template_arg(self, &mut renders, value, "value");
                    quote! { &[#field_arg, #value_arg] }
                }
                // Without `field`, HSET writes every top-level field of the event.
                None => quote! { &[] },
            },
            RedisCommand::ZAdd => {
                let score_text = match score {
                    Some(template) => {
                        renders.push(self.render(template, tree, &format_ident!("t_score_text"), node_id));
                        quote! { t_score_text.trim() }
                    }
                    None => quote! { &record.event_time.to_string() },
                };
                let reason = format!("template: score of node `{node_id}` is not a number: ");
                renders.push(quote! {
                    let t_score = match #score_text.parse::<f64>() {
                        Ok(score) if score.is_finite() => score.to_string(),
                        _ => {
                            cx.dead_letter_at(#idx, &format!("{}{:?}", #reason, #score_text), DeadEvent::Json(Cow::Borrowed(record.text)));
                            return;
                        }
                    };
                });
                let value_arg = template_arg(self, &mut renders, value, "value");
                quote! { &[t_score.as_str(), #value_arg] }
            }
            RedisCommand::Set | RedisCommand::SAdd | RedisCommand::LPush | RedisCommand::RPush => {
                let value_arg = template_arg(self, &mut renders, value, "value");
                quote! { &[#value_arg] }
            }
        };
        quote! {
            let live = cx.sink_live(#sink);
            #(#renders)*
            if !live {
                cx.emit(#sink, record.event_time, record.text);
                cx.preview_redis(#sink, record.event_time, record.text, &t_key, #args);
                return;
            }
            cx.redis(#sink, record.text, &t_key, #args);
        }
    }
}

impl Generator<'_> {
    /// The body of an api-sink node: url (fields percent-encoded), headers, JSON body, and the
    /// key text of the `Idempotency-Key`: the first `{{ }}` field of the url, else of the body,
    /// else the whole event.
    pub(crate) fn api_body(&mut self, idx: NodeIdx, tree: &ViewTree) -> TokenStream {
        let node = &self.pipeline.nodes[idx];
        let Operator::ApiSink { url, method, headers, body, .. } = &node.op else {
            unreachable!("node_body calls api_body only for an api-sink")
        };
        let node_id = node.id.as_str();
        let sink = self.sink_index[&idx];
        let mut renders = vec![self.render_as(url, tree, &format_ident!("t_url"), node_id, Encoding::Url)];
        if url.parts.iter().any(|part| matches!(part, TemplatePart::Field(_))) {
            // URL parsers resolve `..` (even percent-encoded): a field may not climb out of the path.
            let reason = format!("template: a field forms the dot segment `{{}}` in the URL path at node `{node_id}`");
            renders.push(quote! {
                if let Some(segment) = pulse_runtime::generated::dot_segment(&t_url) {
                    cx.dead_letter_at(#idx, &format!(#reason, segment), DeadEvent::Json(Cow::Borrowed(record.text)));
                    return;
                }
            });
        }
        let mut header_args = Vec::new();
        for (index, (name, template)) in headers.iter().enumerate() {
            let ident = format_ident!("t_header_{}", index);
            renders.push(self.render(template, tree, &ident, node_id));
            header_args.push(quote! { (#name, #ident) });
        }
        let body_arg = match body {
            Some(body) => {
                let mut steps = Vec::new();
                let mut counter = 0;
                self.body_steps(body, tree, node_id, &mut steps, &mut counter);
                renders.push(quote! {
                    let mut t_body = String::new();
                    #(#steps)*
                });
                quote! { Some(t_body) }
            }
            None if matches!(method.as_str(), "GET" | "DELETE") => quote! { None },
            None => quote! { Some(record.text.to_string()) },
        };
        let first_field =
            templates(&node.op).into_iter().flat_map(|template| &template.parts).find_map(|part| match part {
                TemplatePart::Field(path) => Some(path),
                _ => None,
            });
        let key_text = match first_field {
            Some(path) => {
                let value = access(quote! { view }, tree, &path.0);
                quote! { let t_idempotency = pulse_runtime::generated::text::text_form(#value); }
            }
            None => quote! { let t_idempotency = record.text; },
        };
        let preview_body = match body {
            Some(_) => quote! { Some(t_body.as_str()) },
            None if matches!(method.as_str(), "GET" | "DELETE") => quote! { None },
            None => quote! { Some(record.text) },
        };
        let preview_headers = header_args.clone();
        quote! {
            let live = cx.sink_live(#sink);
            #(#renders)*
            #key_text
            if !live {
                cx.emit(#sink, record.event_time, record.text);
                cx.preview_api(#sink, record.event_time, &t_url, &[#(#preview_headers),*], #preview_body, &t_idempotency);
                return;
            }
            cx.api(#sink, record.text, record.event_time, t_url, vec![#(#header_args),*], #body_arg, &t_idempotency);
        }
    }

    /// Statements appending the JSON of `value` to `t_body`: a string that is exactly one
    /// `{{ field }}` inserts the field's JSON value; other strings insert fields as JSON-escaped
    /// text.
    fn body_steps(
        &mut self,
        value: &TemplateValue,
        tree: &ViewTree,
        node_id: &str,
        steps: &mut Vec<TokenStream>,
        counter: &mut usize,
    ) {
        let literal = |text: String| quote! { t_body.push_str(#text); };
        match value {
            TemplateValue::Null => steps.push(literal("null".to_string())),
            TemplateValue::Bool(flag) => steps.push(literal(flag.to_string())),
            TemplateValue::Int(number) => steps.push(literal(number.to_string())),
            TemplateValue::Float(number) => {
                steps.push(literal(if number.is_finite() { format!("{number:?}") } else { "null".to_string() }))
            }
            TemplateValue::String(template) => match template.parts.as_slice() {
                [TemplatePart::Field(path)] => {
                    let value = access(quote! { view }, tree, &path.0);
                    let reason = format!("template: field `{}` is null at node `{node_id}`", path.dotted());
                    let node_idx = self.node_index(node_id);
                    steps.push(quote! {
                        let value = #value;
                        if value.is_null() {
                            cx.dead_letter_at(#node_idx, #reason, DeadEvent::Json(Cow::Borrowed(record.text)));
                            return;
                        }
                        json::write_val(&mut t_body, value);
                    });
                }
                _ => {
                    let ident = format_ident!("t_text_{}", *counter);
                    *counter += 1;
                    let render = self.render(template, tree, &ident, node_id);
                    steps.push(quote! {
                        #render
                        json::write_str(&mut t_body, &#ident);
                    });
                }
            },
            TemplateValue::Array(items) => {
                steps.push(literal("[".to_string()));
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        steps.push(literal(",".to_string()));
                    }
                    self.body_steps(item, tree, node_id, steps, counter);
                }
                steps.push(literal("]".to_string()));
            }
            TemplateValue::Object(members) => {
                steps.push(literal("{".to_string()));
                for (index, (name, item)) in members.iter().enumerate() {
                    let key = json_quote(name);
                    let separator = if index > 0 { "," } else { "" };
                    steps.push(literal(format!("{separator}{key}:")));
                    self.body_steps(item, tree, node_id, steps, counter);
                }
                steps.push(literal("}".to_string()));
            }
        }
    }
}

/// `text` as a JSON string literal (compile time).
fn json_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ch if (ch as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", ch as u32)),
            ch => out.push(ch),
        }
    }
    out.push('"');
    out
}
