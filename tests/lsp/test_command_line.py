"""The arguments LSP clients put after `pulsec lsp`: vscode-languageclient appends `--stdio` for
`TransportKind.stdio`, and some clients pass `--clientProcessId=PID`. The server accepts both and
serves over stdin/stdout; an unknown argument is still a usage error."""

import os
import subprocess

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from conftest import CLIENT_CAPABILITIES, PULSEC, ROOT
from test_server import JOURNEY, diagnostics_for, open_document, position


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[PULSEC, "lsp", "--stdio", f"--clientProcessId={os.getpid()}"])
)
async def stdio_client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=CLIENT_CAPABILITIES, root_uri=ROOT.as_uri())
    )
    yield
    await lsp_client.shutdown_session()


async def test_serves_with_the_stdio_flag(stdio_client: LanguageClient, tmp_path):
    broken = JOURNEY.replace("userId != null", "usr_id != null")
    uri = open_document(stdio_client, tmp_path / "welcome.pulse", broken)
    diagnostics = await diagnostics_for(stdio_client, uri, 1)
    assert [d.code for d in diagnostics] == ["E0205"]
    assert diagnostics[0].range.start == position(broken, "usr_id")


def test_an_unknown_argument_is_a_usage_error():
    result = subprocess.run(
        [PULSEC, "lsp", "--socket=4000"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2, result
    assert "--socket" in result.stderr
