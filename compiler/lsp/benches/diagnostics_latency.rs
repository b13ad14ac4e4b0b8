//! Latency of diagnostics: the time from a `didChange` of a 200-line pipeline to the
//! `publishDiagnostics` that answers it, through the real server loop over an in-memory
//! connection (the stdio transport adds only a pipe write). Run with
//! `cargo bench -p pulse-lsp --bench diagnostics_latency`; figures go to docs/benchmarks.md.

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use lsp_types::notification::Notification as _;
use std::time::{Duration, Instant};

const ROUNDS: usize = 200;

/// A journey of about 200 lines: a schema, a source, 30 stages of filters, maps, delays and
/// segmentations, a splitter with branches, and sinks with templates.
fn pipeline(round: usize, with_error: bool) -> String {
    let mut text = String::from("// Benchmark journey for the LSP latency figures.\npipeline lsp-bench\ndescription \"LSP latency benchmark\"\n\nevent {\n");
    for field in
        ["event_name: string", "userId: string?", "ts: timestamp", "amount: float?", "count: int?", "country: string?"]
    {
        text.push_str(&format!("  {field}\n"));
    }
    text.push_str("  props: { show_id: string?, device: string?, plan: string? }?\n}\n\n");
    text.push_str(
        "source: kafka-source(\"events\") {\n  brokers: \"broker1:9092\"\n  groupId: \"bench\"\n  eventTime: ts\n}\n\n",
    );
    let mut previous = "source".to_string();
    for stage in 0..30 {
        let id = format!("stage_{stage}");
        match stage % 3 {
            0 => {
                let field = if with_error && stage == 15 { "amout" } else { "amount" };
                text.push_str(&format!(
                    "{id}: filter(event_name != \"noise_{round}\" && ({field} == null || {field} >= {stage}))\n"
                ));
            }
            1 => text.push_str(&format!(
                "{id}: map {{\n  set: {{\n    score_{stage}: coalesce(count, 0) * {stage} + 1\n    label_{stage}: lower(coalesce(country, \"none\"))\n  }}\n  remove: [props.plan]\n}}\n"
            )),
            _ => text.push_str(&format!("{id}: delay({}m) by userId {{\n  mode: \"latest\"\n}}\n", stage + 1)),
        }
        text.push_str(&format!("{previous} -> {id}\n\n"));
        previous = id;
    }
    text.push_str("seg: segmentation(1h) by userId {\n  counter logins_7d over 7d where event_name == \"login\"\n  counter events_1d over 1d\n  segment power_user: logins_7d >= 10 && events_1d > 100\n  emit: \"onChange\"\n}\n\n");
    text.push_str("split: splitter {\n  route big: amount != null && amount >= 50\n  route tv: props.device in [\"tv\", \"console\"]\n}\n\n");
    text.push_str(&format!("{previous} -> seg -> split {{\n  big -> push: api-sink(\"https://notify/send\") {{\n    method: \"POST\"\n    body: {{ userId: \"{{{{ userId }}}}\", title: \"Hi [[firstName]]\" }}\n  }}\n  tv -> tv_out: stdout-sink\n  default -> other: stdout-sink\n}}\n"));
    text
}

fn main() -> anyhow::Result<()> {
    let (server_side, client) = Connection::memory();
    let server = std::thread::spawn(move || pulse_lsp::server::run(&server_side));
    let uri = lsp_types::Url::parse("file:///bench/journey.pulse")?;
    let initialize = lsp_types::InitializeParams::default();
    client.sender.send(Message::Request(Request::new(RequestId::from(1), "initialize".into(), initialize)))?;
    wait_for(&client, |message| matches!(message, Message::Response(_)))?;
    notify(&client, lsp_types::notification::Initialized::METHOD, lsp_types::InitializedParams {})?;
    let text = pipeline(0, false);
    let n_lines = text.lines().count();
    let open = lsp_types::DidOpenTextDocumentParams {
        text_document: lsp_types::TextDocumentItem { uri: uri.clone(), language_id: "pulse".into(), version: 0, text },
    };
    notify(&client, lsp_types::notification::DidOpenTextDocument::METHOD, open)?;
    let first = wait_for_diagnostics(&client, 0)?;
    assert_eq!(first, 0, "the benchmark journey checks without errors");

    let mut latencies = Vec::with_capacity(ROUNDS);
    let mut errors_seen = 0;
    for round in 1..=ROUNDS {
        let with_error = round % 2 == 0;
        let change = lsp_types::DidChangeTextDocumentParams {
            text_document: lsp_types::VersionedTextDocumentIdentifier { uri: uri.clone(), version: round as i32 },
            content_changes: vec![lsp_types::TextDocumentContentChangeEvent {
                range: None,
                range_length: None,
                text: pipeline(round, with_error),
            }],
        };
        let started = Instant::now();
        notify(&client, lsp_types::notification::DidChangeTextDocument::METHOD, change)?;
        let n_diagnostics = wait_for_diagnostics(&client, round as i32)?;
        latencies.push(started.elapsed());
        if with_error {
            assert!(n_diagnostics > 0, "the misspelt field is reported");
            errors_seen += 1;
        }
    }
    client.sender.send(Message::Request(Request::new(
        RequestId::from(2),
        "shutdown".into(),
        serde_json::Value::Null,
    )))?;
    wait_for(&client, |message| matches!(message, Message::Response(_)))?;
    notify(&client, lsp_types::notification::Exit::METHOD, serde_json::Value::Null)?;
    server.join().map_err(|_| anyhow::anyhow!("the server thread panicked"))??;

    latencies.sort();
    let percentile = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    println!(
        "didChange -> publishDiagnostics, {n_lines}-line pipeline, {ROUNDS} changes ({errors_seen} with an error): \
         min {:.2} ms, median {:.2} ms, p95 {:.2} ms, max {:.2} ms (budget 100 ms)",
        ms(latencies[0]),
        ms(percentile(50)),
        ms(percentile(95)),
        ms(latencies[latencies.len() - 1])
    );
    Ok(())
}

fn notify(client: &Connection, method: &str, params: impl serde::Serialize) -> anyhow::Result<()> {
    client.sender.send(Message::Notification(Notification::new(method.into(), params)))?;
    Ok(())
}

fn wait_for(client: &Connection, matches: impl Fn(&Message) -> bool) -> anyhow::Result<Message> {
    loop {
        let message = client.receiver.recv_timeout(Duration::from_secs(10))?;
        if matches(&message) {
            return Ok(message);
        }
    }
}

/// Waits for the diagnostics of `version` and returns how many there are.
/// The number of errors published for `version`.
fn wait_for_diagnostics(client: &Connection, version: i32) -> anyhow::Result<usize> {
    loop {
        let message = wait_for(
            client,
            |message| matches!(message, Message::Notification(notification) if notification.method == lsp_types::notification::PublishDiagnostics::METHOD),
        )?;
        let Message::Notification(notification) = message else { continue };
        let params: lsp_types::PublishDiagnosticsParams = serde_json::from_value(notification.params)?;
        if params.version == Some(version) {
            // Errors only: the journey's nullable keys get editor hints, and its template W0007.
            let errors = params
                .diagnostics
                .iter()
                .filter(|diagnostic| diagnostic.severity == Some(lsp_types::DiagnosticSeverity::ERROR));
            return Ok(errors.count());
        }
    }
}
