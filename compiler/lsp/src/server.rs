//! The LSP loop over a `lsp_server::Connection`: document state, analyses on open and change
//! (coalesced: a burst of changes is analysed once, when the queue is empty), diagnostics
//! publishing, and request dispatch. A panicking handler answers with an error; the server lives on.

use crate::analysis::{analyze, Analysis};
use crate::line_index::LineIndex;
use crate::{
    code_actions, completion, definition, diagnostics, hover, recovery, rename, semantic_tokens, signature_help,
    symbols,
};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::Notification as _;
use lsp_types::request::Request as _;
use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOptions, CodeActionOrCommand, CodeActionProviderCapability,
    CompletionOptions, DocumentSymbol, DocumentSymbolResponse, GotoDefinitionResponse, Hover, HoverContents,
    HoverProviderCapability, InitializeParams, Location, MarkupContent, MarkupKind, OneOf, Position,
    PrepareRenameResponse, PublishDiagnosticsParams, Range, RenameOptions, ServerCapabilities,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Url, WorkspaceEdit,
};
use pulse_syntax::Span;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// A custom request that panics on purpose, so tests can check that a panicking handler becomes
/// an error response and the server keeps serving.
pub const DEBUG_PANIC_METHOD: &str = "pulse/debugPanic";

pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        document_highlight_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some([".", "\"", "{", ">", ":"].iter().map(|ch| ch.to_string()).collect()),
            ..CompletionOptions::default()
        }),
        signature_help_provider: Some(lsp_types::SignatureHelpOptions {
            trigger_characters: Some(vec!["(".into(), ",".into()]),
            retrigger_characters: Some(vec![",".into()]),
            work_done_progress_options: Default::default(),
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..CodeActionOptions::default()
        })),
        semantic_tokens_provider: Some(lsp_types::SemanticTokensServerCapabilities::SemanticTokensOptions(
            lsp_types::SemanticTokensOptions {
                legend: semantic_tokens::legend(),
                full: Some(lsp_types::SemanticTokensFullOptions::Bool(true)),
                range: None,
                work_done_progress_options: Default::default(),
            },
        )),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        ..ServerCapabilities::default()
    }
}

/// Runs the server on `connection` until `shutdown` and `exit`: the initialize handshake, then the loop.
pub fn run(connection: &Connection) -> anyhow::Result<()> {
    let (id, params) = connection.initialize_start()?;
    // LSP 3.18 (proposed), which `lsp_types` does not model yet: the client renders Markdown
    // diagnostic messages.
    let markdown_messages =
        params.pointer("/capabilities/textDocument/diagnostic/markupMessageSupport") == Some(&Json::Bool(true));
    let params: InitializeParams = serde_json::from_value(params).unwrap_or_default();
    let result = serde_json::json!({
        "capabilities": capabilities(),
        "serverInfo": { "name": "pulsec lsp", "version": env!("CARGO_PKG_VERSION") },
    });
    connection.initialize_finish(id, result)?;
    let errors_dir = errors_dir(&params);
    let snippets = params
        .capabilities
        .text_document
        .as_ref()
        .and_then(|text| text.completion.as_ref())
        .and_then(|completion| completion.completion_item.as_ref())
        .and_then(|item| item.snippet_support)
        .unwrap_or(false);
    let mut server = Server { documents: HashMap::new(), closed: Vec::new(), errors_dir, snippets, markdown_messages };
    while let Ok(message) = connection.receiver.recv() {
        match message {
            Message::Request(request) => {
                if connection.handle_shutdown(&request)? {
                    return Ok(());
                }
                let response = server.request(request);
                connection.sender.send(Message::Response(response))?;
            }
            Message::Notification(notification) => {
                if notification.method == lsp_types::notification::Exit::METHOD {
                    return Ok(());
                }
                server.notification(notification);
            }
            Message::Response(_) => {}
        }
        // Analyse and publish once the burst of queued messages is handled.
        if connection.receiver.is_empty() {
            for notification in server.publish_dirty() {
                connection.sender.send(Message::Notification(notification))?;
            }
        }
    }
    Ok(())
}

struct OpenDocument {
    text: String,
    version: i32,
    /// `None` after a change until the next analysis.
    analysis: Option<Analysis>,
    /// The last analysis without a syntax error (`recovery::is_broken`), which completion, hover
    /// and a broken JSON DAG's diagnostics fall back on.
    last_good: Option<Analysis>,
    published: bool,
}

struct Server {
    documents: HashMap<Url, OpenDocument>,
    /// Documents closed since the last publish: their diagnostics are cleared (an empty list),
    /// or the editor would keep showing them for a file nobody checks any more.
    closed: Vec<Url>,
    /// The code pages (`docs/errors/`) of the workspace, which diagnostics link to.
    errors_dir: Option<PathBuf>,
    /// The client inserts completion snippets (`contains(${1:text}, ${2:part})`).
    snippets: bool,
    /// The client renders diagnostic messages given as Markdown (`markupMessageSupport`).
    markdown_messages: bool,
}

/// The `docs/errors/` directory of the first workspace folder (or the root) that has one.
#[allow(deprecated)] // `root_uri` and `root_path` are read for clients that send only them.
fn errors_dir(params: &InitializeParams) -> Option<PathBuf> {
    let folders = params.workspace_folders.iter().flatten().map(|folder| folder.uri.to_file_path().ok());
    let root = params.root_uri.as_ref().map(|uri| uri.to_file_path().ok());
    let root_path = params.root_path.as_ref().map(|path| Some(PathBuf::from(path)));
    folders
        .chain(root)
        .chain(root_path)
        .flatten()
        .map(|root| root.join(diagnostics::ERRORS_DIR))
        .find(|dir| dir.is_dir())
}

type HandlerResult = Result<Json, (ErrorCode, String)>;

impl Server {
    fn notification(&mut self, notification: Notification) {
        use lsp_types::notification::{DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument};
        match notification.method.as_str() {
            DidOpenTextDocument::METHOD => {
                if let Ok(params) = serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(notification.params)
                {
                    let document = params.text_document;
                    self.set_text(document.uri, document.text, document.version);
                }
            }
            DidChangeTextDocument::METHOD => {
                if let Ok(params) =
                    serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(notification.params)
                {
                    // Full synchronisation: the last change holds the whole text.
                    if let Some(change) = params.content_changes.into_iter().last() {
                        self.set_text(params.text_document.uri, change.text, params.text_document.version);
                    }
                }
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(params) = serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(notification.params)
                {
                    let uri = params.text_document.uri;
                    if self.documents.remove(&uri).is_some() && !self.closed.contains(&uri) {
                        self.closed.push(uri);
                    }
                }
            }
            _ => {}
        }
    }

    fn set_text(&mut self, uri: Url, text: String, version: i32) {
        let document = self.documents.entry(uri).or_insert(OpenDocument {
            text: String::new(),
            version,
            analysis: None,
            last_good: None,
            published: false,
        });
        if let Some(previous) = document.analysis.take() {
            if !recovery::is_broken(&previous) {
                document.last_good = Some(previous);
            }
        }
        document.text = text;
        document.version = version;
        document.published = false;
    }

    fn analysis(&mut self, uri: &Url) -> Option<&OpenDocument> {
        let document = self.documents.get_mut(uri)?;
        if document.analysis.is_none() {
            let mut analysis = analyze_document(uri, document.text.clone());
            if let Some(last_good) = &document.last_good {
                let carried = recovery::carried_diagnostics(&analysis, last_good);
                analysis.diagnostics.extend(carried);
            }
            document.analysis = Some(analysis);
        }
        Some(document)
    }

    fn publish_dirty(&mut self) -> Vec<Notification> {
        let dirty: Vec<Url> =
            self.documents.iter().filter(|(_, document)| !document.published).map(|(uri, _)| uri.clone()).collect();
        let mut notifications = Vec::new();
        let errors_dir = self.errors_dir.clone();
        let markdown_messages = self.markdown_messages;
        // First the closed documents' empty lists, so that a document reopened in the same burst
        // ends with its fresh diagnostics.
        for uri in std::mem::take(&mut self.closed) {
            let params = PublishDiagnosticsParams { uri, diagnostics: Vec::new(), version: None };
            notifications.push(Notification::new(lsp_types::notification::PublishDiagnostics::METHOD.into(), params));
        }
        for uri in dirty {
            let published = catch_unwind(AssertUnwindSafe(|| {
                let document = self.analysis(&uri)?;
                let analysis = document.analysis.as_ref()?;
                let index = LineIndex::new(&document.text);
                let uri_of = |span: Span| other_file_location(&uri, analysis, span);
                let mut diagnostics = diagnostics::to_lsp(analysis, &uri, &index, &uri_of, errors_dir.as_deref());
                diagnostics.extend(diagnostics::hints_to_lsp(analysis, &index).into_iter().map(|(hint, _)| hint));
                let params =
                    PublishDiagnosticsParams { uri: uri.clone(), diagnostics, version: Some(document.version) };
                let mut params = serde_json::to_value(params).ok()?;
                if markdown_messages {
                    for message in
                        params["diagnostics"].as_array_mut()?.iter_mut().map(|diagnostic| &mut diagnostic["message"])
                    {
                        let markdown = diagnostics::markdown_message(message.as_str().unwrap_or_default());
                        *message = serde_json::json!({ "kind": "markdown", "value": markdown });
                    }
                }
                Some(params)
            }));
            if let Some(document) = self.documents.get_mut(&uri) {
                document.published = true;
            }
            if let Ok(Some(params)) = published {
                notifications
                    .push(Notification::new(lsp_types::notification::PublishDiagnostics::METHOD.into(), params));
            }
        }
        notifications
    }

    fn request(&mut self, request: Request) -> Response {
        let id = request.id.clone();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.dispatch(request)));
        match outcome {
            Ok(Ok(result)) => Response::new_ok(id, result),
            Ok(Err((code, message))) => Response::new_err(id, code as i32, message),
            Err(panic) => {
                let reason = panic
                    .downcast_ref::<&str>()
                    .map(|text| text.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Response::new_err(
                    id,
                    ErrorCode::InternalError as i32,
                    format!("internal error in pulsec lsp: {reason}"),
                )
            }
        }
    }

    fn dispatch(&mut self, request: Request) -> HandlerResult {
        use lsp_types::request::{
            CodeActionRequest, Completion, DocumentHighlightRequest, DocumentSymbolRequest, Formatting, GotoDefinition,
            HoverRequest, PrepareRenameRequest, References, Rename, SemanticTokensFullRequest, SignatureHelpRequest,
        };
        match request.method.as_str() {
            HoverRequest::METHOD => {
                let params: lsp_types::HoverParams = parse(request.params)?;
                let position = params.text_document_position_params;
                let document = self.analysis(&position.text_document.uri).ok_or_else(unknown_document)?;
                let analysis = document.analysis.as_ref().ok_or_else(unknown_document)?;
                let index = LineIndex::new(&document.text);
                let offset = index.offset(position.position);
                let hover = hover::hover(analysis, document.last_good.as_ref(), offset).map(|(text, span)| Hover {
                    contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: text }),
                    range: Some(index.range(span.range())),
                });
                to_json(hover)
            }
            GotoDefinition::METHOD => {
                let params: lsp_types::GotoDefinitionParams = parse(request.params)?;
                let position = params.text_document_position_params;
                let uri = position.text_document.uri.clone();
                self.at(&uri, position.position, |analysis, index, offset| {
                    let location = definition::definition(analysis, offset).and_then(|found| {
                        if found.span.file == analysis.file {
                            Some(Location { uri: uri.clone(), range: index.range(found.span.range()) })
                        } else {
                            other_file_location(&uri, analysis, found.span).map(|(uri, range)| Location { uri, range })
                        }
                    });
                    to_json(location.map(GotoDefinitionResponse::Scalar))
                })
            }
            Completion::METHOD => {
                let params: lsp_types::CompletionParams = parse(request.params)?;
                let position = params.text_document_position;
                let uri = position.text_document.uri;
                let document = self.analysis(&uri).ok_or_else(unknown_document)?;
                let analysis = document.analysis.as_ref().ok_or_else(unknown_document)?;
                let index = LineIndex::new(&document.text);
                let offset = index.offset(position.position);
                let items: Vec<lsp_types::CompletionItem> =
                    completion::complete(analysis, document.last_good.as_ref(), offset)
                        .into_iter()
                        .map(|item| {
                            let snippet = item.snippet.filter(|_| self.snippets);
                            lsp_types::CompletionItem {
                                label: item.label,
                                kind: Some(item.kind),
                                detail: item.detail,
                                sort_text: item.sort_text,
                                insert_text_format: snippet.as_ref().map(|_| lsp_types::InsertTextFormat::SNIPPET),
                                insert_text: snippet,
                                documentation: item.documentation.map(|text| {
                                    lsp_types::Documentation::MarkupContent(MarkupContent {
                                        kind: MarkupKind::Markdown,
                                        value: text,
                                    })
                                }),
                                ..lsp_types::CompletionItem::default()
                            }
                        })
                        .collect();
                to_json(lsp_types::CompletionResponse::Array(items))
            }
            DocumentSymbolRequest::METHOD => {
                let params: lsp_types::DocumentSymbolParams = parse(request.params)?;
                let document = self.analysis(&params.text_document.uri).ok_or_else(unknown_document)?;
                let analysis = document.analysis.as_ref().ok_or_else(unknown_document)?;
                let index = LineIndex::new(&document.text);
                let symbols: Vec<DocumentSymbol> =
                    symbols::symbols(analysis).iter().map(|symbol| to_lsp_symbol(symbol, &index)).collect();
                to_json(DocumentSymbolResponse::Nested(symbols))
            }
            SignatureHelpRequest::METHOD => {
                let params: lsp_types::SignatureHelpParams = parse(request.params)?;
                let position = params.text_document_position_params;
                self.at(&position.text_document.uri, position.position, |analysis, _, offset| {
                    let help = signature_help::signature_help(analysis, offset).map(|signature| {
                        let parameters = signature
                            .parameters
                            .iter()
                            .map(|(start, end)| lsp_types::ParameterInformation {
                                label: lsp_types::ParameterLabel::LabelOffsets([*start as u32, *end as u32]),
                                documentation: None,
                            })
                            .collect();
                        lsp_types::SignatureHelp {
                            signatures: vec![lsp_types::SignatureInformation {
                                label: signature.label,
                                documentation: Some(lsp_types::Documentation::MarkupContent(MarkupContent {
                                    kind: MarkupKind::Markdown,
                                    value: signature.documentation,
                                })),
                                parameters: Some(parameters),
                                active_parameter: Some(signature.active_parameter as u32),
                            }],
                            active_signature: Some(0),
                            active_parameter: Some(signature.active_parameter as u32),
                        }
                    });
                    to_json(help)
                })
            }
            SemanticTokensFullRequest::METHOD => {
                let params: lsp_types::SemanticTokensParams = parse(request.params)?;
                let document = self.analysis(&params.text_document.uri).ok_or_else(unknown_document)?;
                let analysis = document.analysis.as_ref().ok_or_else(unknown_document)?;
                let index = LineIndex::new(&document.text);
                let data = semantic_tokens::encode(&semantic_tokens::tokens(analysis), &index);
                to_json(lsp_types::SemanticTokens { result_id: None, data })
            }
            Formatting::METHOD => {
                let params: lsp_types::DocumentFormattingParams = parse(request.params)?;
                let document = self.documents.get(&params.text_document.uri).ok_or_else(unknown_document)?;
                let edits = format_document(&params.text_document.uri, &document.text);
                to_json(edits)
            }
            References::METHOD => {
                let params: lsp_types::ReferenceParams = parse(request.params)?;
                let position = params.text_document_position;
                let uri = position.text_document.uri.clone();
                let include_declaration = params.context.include_declaration;
                self.at(&uri, position.position, |analysis, index, offset| {
                    let Some((spans, declaration)) = rename::declaration_first(analysis, offset) else {
                        return to_json(None::<Vec<Location>>);
                    };
                    let locations: Vec<Location> = spans
                        .iter()
                        .filter(|span| include_declaration || Some(**span) != declaration)
                        .map(|span| Location { uri: uri.clone(), range: index.range(span.range()) })
                        .collect();
                    to_json(Some(locations))
                })
            }
            DocumentHighlightRequest::METHOD => {
                let params: lsp_types::DocumentHighlightParams = parse(request.params)?;
                let position = params.text_document_position_params;
                self.at(&position.text_document.uri, position.position, |analysis, index, offset| {
                    let highlights = rename::declaration_first(analysis, offset).map(|(spans, declaration)| {
                        spans
                            .iter()
                            .map(|span| lsp_types::DocumentHighlight {
                                range: index.range(span.range()),
                                kind: Some(if Some(*span) == declaration {
                                    lsp_types::DocumentHighlightKind::WRITE
                                } else {
                                    lsp_types::DocumentHighlightKind::READ
                                }),
                            })
                            .collect::<Vec<_>>()
                    });
                    to_json(highlights)
                })
            }
            PrepareRenameRequest::METHOD => {
                let params: lsp_types::TextDocumentPositionParams = parse(request.params)?;
                self.at(&params.text_document.uri, params.position, |analysis, index, offset| match rename::node_id_at(
                    analysis, offset,
                ) {
                    Some((_, span)) => to_json(PrepareRenameResponse::Range(index.range(span.range()))),
                    None => Err((ErrorCode::RequestFailed, "only node ids can be renamed".into())),
                })
            }
            Rename::METHOD => {
                let params: lsp_types::RenameParams = parse(request.params)?;
                let position = params.text_document_position;
                let uri = position.text_document.uri.clone();
                let new_name = params.new_name;
                self.at(&uri, position.position, |analysis, index, offset| {
                    let spans = rename::rename(analysis, offset, &new_name)
                        .map_err(|reason| (ErrorCode::RequestFailed, reason))?;
                    let edits: Vec<TextEdit> = spans
                        .iter()
                        .map(|span| TextEdit { range: index.range(span.range()), new_text: new_name.clone() })
                        .collect();
                    to_json(WorkspaceEdit {
                        changes: Some(HashMap::from([(uri.clone(), edits)])),
                        ..WorkspaceEdit::default()
                    })
                })
            }
            CodeActionRequest::METHOD => {
                let params: lsp_types::CodeActionParams = parse(request.params)?;
                let uri = params.text_document.uri;
                let errors_dir = self.errors_dir.clone();
                let document = self.analysis(&uri).ok_or_else(unknown_document)?;
                let analysis = document.analysis.as_ref().ok_or_else(unknown_document)?;
                let index = LineIndex::new(&document.text);
                let range = index.offset(params.range.start)..index.offset(params.range.end);
                let uri_of = |span: Span| other_file_location(&uri, analysis, span);
                let lsp_diagnostics = diagnostics::to_lsp(analysis, &uri, &index, &uri_of, errors_dir.as_deref());
                let action =
                    |title: String, span: Span, replacement: String, diagnostic: Option<&lsp_types::Diagnostic>| {
                        let edit = TextEdit { range: index.range(span.range()), new_text: replacement };
                        CodeActionOrCommand::CodeAction(CodeAction {
                            title,
                            kind: Some(CodeActionKind::QUICKFIX),
                            diagnostics: diagnostic.map(|diagnostic| vec![diagnostic.clone()]),
                            edit: Some(WorkspaceEdit {
                                changes: Some(HashMap::from([(uri.clone(), vec![edit])])),
                                ..WorkspaceEdit::default()
                            }),
                            is_preferred: Some(true),
                            ..CodeAction::default()
                        })
                    };
                let mut actions: Vec<CodeActionOrCommand> = code_actions::quick_fixes(analysis, range.clone())
                    .into_iter()
                    .map(|fix| action(fix.title, fix.span, fix.replacement, lsp_diagnostics.get(fix.diagnostic)))
                    .collect();
                // The editor's hints whose key or edit touches the range.
                for (hint, fix) in diagnostics::hints_to_lsp(analysis, &index) {
                    let hint_range = index.offset(hint.range.start)..index.offset(hint.range.end);
                    let Some((title, span, replacement)) = fix else { continue };
                    let touches = |other: &std::ops::Range<usize>| other.start <= range.end && range.start <= other.end;
                    if touches(&hint_range) || touches(&span.range()) {
                        actions.push(action(title, span, replacement, Some(&hint)));
                    }
                }
                to_json(actions)
            }
            DEBUG_PANIC_METHOD => panic!("deliberate panic from `{DEBUG_PANIC_METHOD}`"),
            method => Err((ErrorCode::MethodNotFound, format!("`{method}` is not supported by pulsec lsp"))),
        }
    }

    /// Runs `handler` on the analysis of `uri` at `position`.
    fn at(
        &mut self,
        uri: &Url,
        position: Position,
        handler: impl FnOnce(&Analysis, &LineIndex, usize) -> HandlerResult,
    ) -> HandlerResult {
        let document = self.analysis(uri).ok_or_else(unknown_document)?;
        let analysis = document.analysis.as_ref().ok_or_else(unknown_document)?;
        let index = LineIndex::new(&document.text);
        handler(analysis, &index, index.offset(position))
    }
}

fn parse<T: serde::de::DeserializeOwned>(params: Json) -> Result<T, (ErrorCode, String)> {
    serde_json::from_value(params).map_err(|error| (ErrorCode::InvalidParams, format!("invalid parameters: {error}")))
}

fn to_json(value: impl serde::Serialize) -> HandlerResult {
    serde_json::to_value(value).map_err(|error| (ErrorCode::InternalError, error.to_string()))
}

fn unknown_document() -> (ErrorCode, String) {
    (ErrorCode::InvalidParams, "the document is not open".into())
}

/// The file name an analysis uses: the path for `file:` URIs, else the URI itself.
fn document_path(uri: &Url) -> Option<PathBuf> {
    uri.to_file_path().ok()
}

fn analyze_document(uri: &Url, text: String) -> Analysis {
    let path = document_path(uri);
    let name = path.as_ref().map(|path| path.display().to_string()).unwrap_or_else(|| uri.path().to_string());
    let base = path.as_ref().and_then(|path| path.parent().map(PathBuf::from));
    let read_schema = |relative: &str| match &base {
        // Never outside the pipeline's directory: the server reads whatever an edited file names.
        Some(base) => crate::schema_file::read_schema_file(base, relative, false),
        None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "the document has no directory")),
    };
    analyze(&name, text, &read_schema)
}

/// The URI and range of a span in another file of the analysis (the JSON Schema file).
fn other_file_location(uri: &Url, analysis: &Analysis, span: Span) -> Option<(Url, Range)> {
    let file = analysis.sources.get(span.file);
    let base = document_path(uri)?.parent()?.to_path_buf();
    let target = Url::from_file_path(base.join(&file.name)).ok()?;
    Some((target, LineIndex::new(&file.text).range(span.range())))
}

/// The edits of `pulsec fmt`: one edit replacing the whole text, none when it is formatted or
/// does not parse.
pub fn format_document(uri: &Url, text: &str) -> Vec<TextEdit> {
    let file = pulse_syntax::FileId(0);
    let formatted = if uri.path().ends_with(".json") {
        match pulse_syntax::json::parse_json_document(file, text) {
            (Some(document), diagnostics) if !diagnostics.iter().any(pulse_syntax::Diagnostic::is_error) => {
                Some(pulse_syntax::json::print_json_document(&document))
            }
            _ => None,
        }
    } else {
        pulse_syntax::pulse::format_pulse(file, text).ok()
    };
    match formatted {
        Some(formatted) if formatted != text => {
            let index = LineIndex::new(text);
            vec![TextEdit { range: Range { start: Position::default(), end: index.end() }, new_text: formatted }]
        }
        _ => Vec::new(),
    }
}

#[allow(deprecated)] // `DocumentSymbol::deprecated` must be written out; it is always `None`.
fn to_lsp_symbol(symbol: &symbols::Symbol, index: &LineIndex) -> DocumentSymbol {
    DocumentSymbol {
        name: symbol.name.clone(),
        detail: symbol.detail.clone(),
        kind: symbol.kind,
        tags: None,
        deprecated: None,
        range: index.range(symbol.span.range()),
        selection_range: index.range(symbol.selection.range()),
        children: Some(symbol.children.iter().map(|child| to_lsp_symbol(child, index)).collect()),
    }
}
