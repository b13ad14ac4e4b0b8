//! The language server driven in-process over an in-memory connection, as an editor drives it:
//! open a document, wait for its diagnostics, send requests and read the answers.

use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::Notification as _;
use lsp_types::{Position, PublishDiagnosticsParams, Url};
use serde_json::{json, Value as Json};
use std::time::Duration;

/// A client of a server running on its own thread; shut down when dropped.
struct Client {
    connection: Connection,
    server: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    next_id: i32,
}

impl Client {
    fn start() -> Client {
        Client::start_with(json!({ "capabilities": {} }))
    }

    fn start_with(initialize: Json) -> Client {
        let (server_side, connection) = Connection::memory();
        let server = std::thread::spawn(move || pulse_lsp::server::run(&server_side));
        let mut client = Client { connection, server: Some(server), next_id: 0 };
        client.request("initialize", initialize);
        client.notify("initialized", json!({}));
        client
    }

    fn notify(&self, method: &str, params: Json) {
        let notification = Notification::new(method.into(), params);
        self.connection.sender.send(Message::Notification(notification)).expect("the server is running");
    }

    /// Sends a request and returns its result; panics on an error response.
    fn request(&mut self, method: &str, params: Json) -> Json {
        let response = self.request_response(method, params);
        if let Some(error) = response.error {
            panic!("`{method}` failed: {}", error.message);
        }
        response.result.unwrap_or(Json::Null)
    }

    fn request_response(&mut self, method: &str, params: Json) -> Response {
        self.next_id += 1;
        let id = RequestId::from(self.next_id);
        let request = Request::new(id.clone(), method.into(), params);
        self.connection.sender.send(Message::Request(request)).expect("the server is running");
        loop {
            match self.receive() {
                Message::Response(response) if response.id == id => return response,
                _ => {}
            }
        }
    }

    fn receive(&self) -> Message {
        self.connection.receiver.recv_timeout(Duration::from_secs(20)).expect("the server answers within 20 s")
    }

    /// Opens `text` as `uri` and returns the diagnostics published for it.
    fn open(&self, uri: &Url, text: &str) -> Vec<lsp_types::Diagnostic> {
        let params: PublishDiagnosticsParams =
            serde_json::from_value(self.open_raw(uri, text)).expect("valid publishDiagnostics");
        params.diagnostics
    }

    /// Opens `text` as `uri` and returns the `publishDiagnostics` parameters as sent.
    fn open_raw(&self, uri: &Url, text: &str) -> Json {
        let language = if uri.path().ends_with(".json") { "json" } else { "pulse" };
        let document = json!({ "uri": uri, "languageId": language, "version": 1, "text": text });
        self.notify(lsp_types::notification::DidOpenTextDocument::METHOD, json!({ "textDocument": document }));
        loop {
            let Message::Notification(notification) = self.receive() else { continue };
            if notification.method != lsp_types::notification::PublishDiagnostics::METHOD {
                continue;
            }
            if notification.params["uri"] == json!(uri) && notification.params["version"] == json!(1) {
                return notification.params;
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.request_response("shutdown", Json::Null);
        self.notify("exit", Json::Null);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// The LSP position (UTF-16) of the `nth` occurrence of `needle` in `text`, plus `delta` characters.
fn position(text: &str, needle: &str, nth: usize, delta: usize) -> Position {
    let offset =
        text.match_indices(needle).nth(nth).unwrap_or_else(|| panic!("`{needle}` #{nth} in the text")).0 + delta;
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |idx| idx + 1);
    let character = before[line_start..].encode_utf16().count();
    Position { line: line as u32, character: character as u32 }
}

fn text_position(uri: &Url, position: Position) -> Json {
    json!({ "textDocument": { "uri": uri }, "position": position })
}

fn codes(diagnostics: &[lsp_types::Diagnostic]) -> Vec<String> {
    diagnostics
        .iter()
        .filter_map(|diagnostic| match &diagnostic.code {
            Some(lsp_types::NumberOrString::String(code)) => Some(code.clone()),
            _ => None,
        })
        .collect()
}

/// The file of issue #18: one missing `}` in `logins`, a misspelt field in `active`.
const MISSING_BRACE: &str = "pipeline demo
event { userId: string?, event_name: string, ts: timestamp, amount: float }

source: file-source(\"events.jsonl\")
active: filter(usr_id != null)
logins: filter { where: event_name == \"login_success\"
big: filter(amount > 10)
sink: stdout-sink
source -> active -> logins -> big -> sink
";

#[test]
fn messages_are_markdown_only_for_clients_that_render_it() {
    let uri = Url::parse("file:///tmp/markdown.pulse").expect("url");
    let text = "pipeline p\nevent { user_id: string }\nsrc: file-source(\"in\")\nsrc -> f: filter(usr_id != null) -> out: stdout-sink\n";
    // VS Code's diagnostics are plain strings (vscode-languageclient 9 speaks LSP 3.17).
    let plain = Client::start().open_raw(&uri, text);
    let message = plain["diagnostics"][0]["message"].as_str().expect("a plain message").to_string();
    assert!(message.starts_with("unknown field `usr_id`"), "{message}");
    assert!(message.contains("\nhelp: did you mean `user_id`?"), "{message}");
    assert!(!message.contains("pulsec explain"), "the code links the page: {message}");
    // LSP 3.18: `markupMessageSupport`.
    let capabilities =
        json!({ "capabilities": { "textDocument": { "diagnostic": { "markupMessageSupport": true } } } });
    let markdown = Client::start_with(capabilities).open_raw(&uri, text);
    let message = &markdown["diagnostics"][0]["message"];
    assert_eq!(message["kind"], "markdown");
    let value = message["value"].as_str().expect("a markdown value");
    assert!(value.starts_with("unknown field `usr_id`"), "{value}");
    assert!(value.contains("\n\n**help:** did you mean `user_id`?"), "{value}");
}

#[test]
fn a_missing_brace_leaves_the_rest_of_the_file_working() {
    let mut client = Client::start();
    let uri = Url::parse("file:///work/journeys/broken.pulse").expect("valid URI");
    let diagnostics = client.open(&uri, MISSING_BRACE);
    assert_eq!(codes(&diagnostics), ["E0002", "E0205"], "{diagnostics:#?}");
    let misspelt = diagnostics.iter().find(|diagnostic| diagnostic.message.contains("usr_id")).expect("E0205");
    assert_eq!(misspelt.range.start, position(MISSING_BRACE, "usr_id", 0, 0));

    let symbols = client.request("textDocument/documentSymbol", json!({ "textDocument": { "uri": uri } }));
    let pipeline = &symbols.as_array().expect("symbols")[0];
    assert_eq!(pipeline["name"], "demo");
    let children: Vec<(&str, &str)> = pipeline["children"]
        .as_array()
        .expect("the pipeline's children")
        .iter()
        .map(|symbol| (symbol["name"].as_str().unwrap_or_default(), symbol["detail"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(
        children,
        [
            ("event", "event schema"),
            ("source", "file-source"),
            ("active", "filter"),
            ("logins", "does not parse"),
            ("big", "filter"),
            ("sink", "stdout-sink")
        ]
    );

    let hover = client.request("textDocument/hover", text_position(&uri, position(MISSING_BRACE, "active ->", 0, 1)));
    let hover_text = hover["contents"]["value"].as_str().expect("a hover on `active`");
    assert!(hover_text.contains("filter"), "{hover_text}");
    // `big` is downstream of the broken node, so its input is unknown; hover still answers.
    let hover = client.request("textDocument/hover", text_position(&uri, position(MISSING_BRACE, "big:", 0, 1)));
    let hover_text = hover["contents"]["value"].as_str().expect("a hover on `big`");
    assert!(hover_text.contains("filter"), "{hover_text}");

    let definition =
        client.request("textDocument/definition", text_position(&uri, position(MISSING_BRACE, "big -> sink", 0, 1)));
    assert_eq!(definition["range"]["start"], json!(position(MISSING_BRACE, "big:", 0, 0)));
    // The broken node keeps its id: its references go to it.
    let definition =
        client.request("textDocument/definition", text_position(&uri, position(MISSING_BRACE, "logins ->", 0, 1)));
    assert_eq!(definition["range"]["start"], json!(position(MISSING_BRACE, "logins:", 0, 0)));
}

#[test]
fn renaming_a_node_named_in_a_broken_item_is_refused() {
    let mut client = Client::start();
    let uri = Url::parse("file:///work/journeys/broken.pulse").expect("valid URI");
    client.open(&uri, MISSING_BRACE);
    let mut params = text_position(&uri, position(MISSING_BRACE, "big:", 0, 1));
    params["newName"] = json!("large");
    assert!(client.request("textDocument/rename", params.clone())["changes"].is_object());
    // The edit could not reach the broken item's own id.
    params["position"] = json!(position(MISSING_BRACE, "logins ->", 0, 1));
    let response = client.request_response("textDocument/rename", params);
    assert!(response.error.is_some(), "{response:?}");
}

/// Applies the one edit of a code action to `text`.
fn apply(text: &str, uri: &Url, action: &Json) -> String {
    let edits = action["edit"]["changes"][uri.as_str()].as_array().expect("edits for the document");
    assert_eq!(edits.len(), 1, "{action}");
    let range: lsp_types::Range = serde_json::from_value(edits[0]["range"].clone()).expect("a range");
    let index = pulse_lsp::line_index::LineIndex::new(text);
    let (start, end) = (index.offset(range.start), index.offset(range.end));
    format!("{}{}{}", &text[..start], edits[0]["newText"].as_str().expect("new text"), &text[end..])
}

const FIXABLE: &str = "pipeline demo
event { userId: string?, event_name: string, ts: timestamp }
source: file-source(\"events.jsonl\")
source -> active: filter(usr_id != null) -> wait: delay(1h30m) by userId -> sink: stdout-sink
";

fn code_actions_at(client: &mut Client, uri: &Url, at: Position) -> Vec<Json> {
    let params = json!({
        "textDocument": { "uri": uri },
        "range": { "start": at, "end": at },
        "context": { "diagnostics": [], "only": ["quickfix"] },
    });
    let actions = client.request("textDocument/codeAction", params);
    actions.as_array().expect("a list of code actions").clone()
}

#[test]
fn quick_fixes_apply_the_edit_the_help_names() {
    let mut client = Client::start();
    let uri = Url::parse("file:///work/journeys/fixable.pulse").expect("valid URI");
    let misspelt_type = FIXABLE.replace("stdout-sink", "stdout-sinc");
    let misspelt_type_uri = Url::parse("file:///work/journeys/misspelt_type.pulse").expect("valid URI");
    assert_eq!(codes(&client.open(&uri, FIXABLE)), ["E0501", "E0205"]);
    assert_eq!(codes(&client.open(&misspelt_type_uri, &misspelt_type)), ["E0501", "E0104"]);
    let cases = [
        (&uri, FIXABLE, "usr_id", "userId"),
        (&uri, FIXABLE, "1h30m", "90m"),
        (&misspelt_type_uri, misspelt_type.as_str(), "stdout-sinc", "stdout-sink"),
    ];
    for (uri, text, wrong, right) in cases {
        let actions = code_actions_at(&mut client, uri, position(text, wrong, 0, 1));
        assert_eq!(actions.len(), 1, "{actions:#?}");
        assert_eq!(actions[0]["kind"], "quickfix");
        assert_eq!(actions[0]["title"], format!("Replace `{wrong}` with `{right}`"));
        assert!(actions[0]["diagnostics"][0]["message"].as_str().is_some_and(|message| message.contains(wrong)));
        assert_eq!(apply(text, uri, &actions[0]), text.replacen(wrong, right, 1));
    }
    assert_eq!(code_actions_at(&mut client, &uri, position(FIXABLE, "pipeline", 0, 0)), Vec::<Json>::new());
}

#[test]
fn the_server_advertises_quick_fixes() {
    let capabilities = serde_json::to_value(pulse_lsp::server::capabilities()).expect("serializable");
    assert_eq!(capabilities["codeActionProvider"]["codeActionKinds"], json!(["quickfix"]));
}

#[test]
fn codes_link_to_their_page_in_the_workspace_and_labels_become_related_information() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository");
    let root_uri = Url::from_directory_path(&root).expect("a directory URI");
    let text = "pipeline demo\nsrc: file-source(\"in\")\nsrc: stdout-sink\nsrc -> f: filter(usr_id != null) -> out: stdout-sink\n";
    let uri = Url::parse("file:///work/journeys/duplicate.pulse").expect("valid URI");

    let client = Client::start_with(json!({ "capabilities": {}, "rootUri": root_uri }));
    let diagnostics = client.open(&uri, text);
    let duplicate = diagnostics.iter().find(|d| d.message.starts_with("duplicate node id")).expect("E0201");
    let page = duplicate.code_description.as_ref().expect("a link to the code's page").href.clone();
    assert_eq!(page, Url::from_file_path(root.join("docs/errors/E0201.md")).expect("a file URI"));
    assert!(!duplicate.message.contains("pulsec explain"), "{}", duplicate.message);
    let related = duplicate.related_information.as_ref().expect("the first declaration");
    assert_eq!(related[0].message, "first declared here");
    assert_eq!(related[0].location.range.start, position(text, "src:", 0, 0));

    // Without a workspace that has the pages, there is no link rather than a dead one.
    let client = Client::start();
    let diagnostics = client.open(&uri, text);
    assert!(!diagnostics.is_empty());
    assert!(diagnostics.iter().all(|d| d.code_description.is_none()), "{diagnostics:#?}");
}

const COMPLETION: &str = r#"pipeline demo
event { user_id: string, event_name: string, ts: timestamp }
source: file-source("in.jsonl")
keep: filter(event_name == "a" && )
out: stdout-sink
source -> keep -> out
"#;

/// Labels, sort texts and the item of `name` of a completion at `at`.
fn completion_at(client: &mut Client, uri: &Url, at: Position) -> Vec<Json> {
    let result = client.request("textDocument/completion", text_position(uri, at));
    result.as_array().expect("a list of items").clone()
}

#[test]
fn completion_puts_fields_before_functions_and_inserts_calls_as_snippets() {
    let capabilities = json!({ "textDocument": { "completion": { "completionItem": { "snippetSupport": true } } } });
    let mut client = Client::start_with(json!({ "capabilities": capabilities }));
    let uri = Url::parse("file:///work/journeys/complete.pulse").expect("valid URI");
    client.open(&uri, COMPLETION);
    let items = completion_at(&mut client, &uri, position(COMPLETION, "&& )", 0, 3));
    let mut ordered: Vec<(String, String)> = items
        .iter()
        .map(|item| {
            (
                item["sortText"].as_str().unwrap_or_default().to_string(),
                item["label"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    ordered.sort();
    let first_function = ordered.iter().position(|(_, label)| label == "contains").expect("functions are offered");
    let last_field = ordered.iter().rposition(|(_, label)| label == "user_id").expect("fields are offered");
    assert!(last_field < first_function, "fields sort before functions: {ordered:?}");
    let contains = items.iter().find(|item| item["label"] == "contains").expect("contains");
    assert_eq!(contains["insertText"], "contains(${1:text}, ${2:part})$0");
    assert_eq!(contains["insertTextFormat"], 2, "a snippet");
    assert!(contains["documentation"]["value"].as_str().unwrap_or_default().contains("`contains(text, part)`"));

    // A client without snippet support gets the plain name.
    let mut plain = Client::start();
    plain.open(&uri, COMPLETION);
    let items = completion_at(&mut plain, &uri, position(COMPLETION, "&& )", 0, 3));
    let contains = items.iter().find(|item| item["label"] == "contains").expect("contains");
    assert!(contains.get("insertText").is_none_or(Json::is_null), "{contains}");
}
