//! The Pulse language server (`pulsec lsp`), the only crate that knows the LSP. The analyses
//! (what is at a position, hover text, definitions, completions, symbols, renames, semantic
//! tokens, signature help) are pure
//! functions over an `Analysis`; `server` turns them into LSP messages over stdio.

pub mod analysis;
pub mod code_actions;
pub mod completion;
pub mod definition;
pub mod diagnostics;
pub mod flow_fixes;
pub mod hover;
pub mod line_index;
pub mod locate;
pub mod recovery;
pub mod rename;
pub mod semantic_tokens;
pub mod server;
pub mod signature_help;
pub mod symbols;

/// The guarded reader of JSON Schema files lives below both doors; the server reads through it.
pub use pulse_analysis::schema_file;

/// Serves the LSP over stdin/stdout until the client says `exit` (`pulsec lsp`).
pub fn run_stdio() -> anyhow::Result<()> {
    let (connection, io_threads) = lsp_server::Connection::stdio();
    let result = server::run(&connection);
    // The I/O threads end only when the connection's channels close: drop it before joining.
    drop(connection);
    io_threads.join()?;
    result
}
