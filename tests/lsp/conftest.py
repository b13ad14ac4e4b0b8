"""A real LSP client (pytest-lsp) driving `pulsec lsp` as a subprocess.

`PULSEC` names the binary (default: target/debug/pulsec, built by `.ci/run` before the tests).
"""

import os
import pathlib

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
PULSEC = os.environ.get("PULSEC", str(ROOT / "target" / "debug" / "pulsec"))

CLIENT_CAPABILITIES = types.ClientCapabilities(
    text_document=types.TextDocumentClientCapabilities(
        hover=types.HoverClientCapabilities(content_format=[types.MarkupKind.Markdown, types.MarkupKind.PlainText]),
        document_symbol=types.DocumentSymbolClientCapabilities(hierarchical_document_symbol_support=True),
        publish_diagnostics=types.PublishDiagnosticsClientCapabilities(
            related_information=True, version_support=True, code_description_support=True, data_support=True
        ),
        rename=types.RenameClientCapabilities(prepare_support=True),
        completion=types.CompletionClientCapabilities(
            completion_item=types.ClientCompletionItemOptions(snippet_support=False)
        ),
    ),
    general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[PULSEC, "lsp"]))
async def client(lsp_client: LanguageClient):
    # Kept for the tests that read the server's capabilities (the semantic tokens' legend).
    lsp_client.initialize_result = await lsp_client.initialize_session(
        types.InitializeParams(capabilities=CLIENT_CAPABILITIES, root_uri=ROOT.as_uri())
    )
    yield
    await lsp_client.shutdown_session()
