"""End-to-end tests of `pulsec lsp` with a real LSP client: diagnostics, hover, definition,
completion, formatting, rename, the outline, UTF-16 positions, and robustness."""

import asyncio
import json
import subprocess

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from conftest import PULSEC, ROOT

JOURNEY = """\
// Welcome journey 👋: greet users after they log in.
pipeline welcome
description "Send a welcome push – five minutes after login"

event {
  event_name: string
  userId: string?
  ts: timestamp
  props: { show_id: string?, amount: float? }?
}

source: file-source("events.jsonl") {
  eventTime: ts
}

split: splitter {
  route big: props.amount != null && props.amount >= 50
}

source
  -> login_filter: filter(event_name == "login_success" && userId != null)
  -> wait_5min: delay(5m) by userId
  -> split
split.big -> send_push: api-sink("https://notify.service/send") {
  method: "POST"
  body: { userId: "{{ userId }}", title: "Welcome [[firstName]]!" }
}
split.default -> rest: stdout-sink
"""


def position(text: str, marker: str, nth: int = 0, delta: int = 0) -> types.Position:
    """The LSP position (UTF-16 columns) of the `nth` occurrence of `marker`, plus `delta` characters."""
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(marker, offset + 1)
    offset += delta
    line = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    column = len(text[line_start:offset].encode("utf-16-le")) // 2
    return types.Position(line=line, character=column)


def open_document(client: LanguageClient, path, text: str, language: str = "pulse") -> str:
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
        )
    )
    return uri


async def diagnostics_for(client: LanguageClient, uri: str, version: int):
    """Waits for the diagnostics of `version` of `uri`."""
    while True:
        params = await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        if params.uri == uri and params.version == version:
            return params.diagnostics


def change(client: LanguageClient, uri: str, version: int, text: str):
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def hover_text(client: LanguageClient, uri: str, pos: types.Position) -> str:
    result = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
    )
    assert result is not None, f"no hover at {pos}"
    return result.contents.value


async def completion_labels(client: LanguageClient, uri: str, pos: types.Position) -> list[str]:
    result = await client.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
    )
    items = result.items if isinstance(result, types.CompletionList) else (result or [])
    return [item.label for item in items]


async def test_diagnostics_on_open_and_after_a_change(client: LanguageClient, tmp_path):
    uri = open_document(client, tmp_path / "welcome.pulse", JOURNEY)
    diagnostics = await diagnostics_for(client, uri, 1)
    assert [d for d in diagnostics if d.severity == types.DiagnosticSeverity.Error] == []

    broken = JOURNEY.replace("userId != null", "usr_id != null")
    change(client, uri, 2, broken)
    diagnostics = await diagnostics_for(client, uri, 2)
    assert len(diagnostics) == 1, diagnostics
    diagnostic = diagnostics[0]
    assert diagnostic.code == "E0205"
    assert diagnostic.source == "pulsec"
    assert diagnostic.severity == types.DiagnosticSeverity.Error
    assert diagnostic.range.start == position(broken, "usr_id")
    assert diagnostic.range.end == position(broken, "usr_id", delta=6)
    assert "did you mean `userId`?" in diagnostic.message
    # The code links to its page in the workspace (the repository: `root_uri` is ROOT); the
    # message does not repeat the `pulsec explain` hint.
    assert "pulsec explain" not in diagnostic.message
    assert diagnostic.code_description.href == (ROOT / "docs" / "errors" / "E0205.md").as_uri()
    assert diagnostic.data == {"explain": "pulsec explain E0205"}

    # A duplicate id points at the first declaration through related information.
    duplicate = JOURNEY.replace("rest: stdout-sink", "split: stdout-sink")
    change(client, uri, 3, duplicate)
    diagnostics = await diagnostics_for(client, uri, 3)
    e0201 = next(d for d in diagnostics if d.code == "E0201")
    related = e0201.related_information[0]
    assert related.location.uri == uri
    assert related.location.range.start == position(duplicate, "split: splitter")

    # Fixing the file clears the diagnostics.
    change(client, uri, 4, JOURNEY)
    assert [d for d in await diagnostics_for(client, uri, 4) if d.severity == types.DiagnosticSeverity.Error] == []


async def test_closing_a_document_clears_its_diagnostics(client: LanguageClient, tmp_path):
    broken = JOURNEY.replace("userId != null", "usr_id != null")
    uri = open_document(client, tmp_path / "welcome.pulse", broken)
    assert [d.code for d in await diagnostics_for(client, uri, 1)] == ["E0205"]

    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    # Within 10 s: a server that publishes nothing on close would leave the client waiting.
    params = await asyncio.wait_for(client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), 10)
    assert params.uri == uri and len(params.diagnostics) == 0 and params.version is None, params

    # Reopened, it is analysed again.
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="pulse", version=2, text=broken)
        )
    )
    assert [d.code for d in await diagnostics_for(client, uri, 2)] == ["E0205"]


async def test_diagnostics_of_a_json_dag(client: LanguageClient, tmp_path):
    dag = {
        "name": "json-journey",
        "schema": {"fields": {"userId": "string", "ts": "timestamp"}},
        "nodes": [
            {"id": "source", "type": "file-source", "config": {"path": "in.jsonl"}},
            {"id": "only_users", "type": "filter", "config": {"where": "userid != null"}},
            {"id": "out", "type": "stdout-sink"},
        ],
        "edges": ["source -> only_users", "only_users -> out"],
    }
    text = json.dumps(dag, indent=2)
    uri = open_document(client, tmp_path / "journey.json", text, language="json")
    diagnostics = await diagnostics_for(client, uri, 1)
    assert [d.code for d in diagnostics] == ["E0205"]
    assert diagnostics[0].range.start == position(text, "userid")


async def test_hover(client: LanguageClient, tmp_path):
    uri = open_document(client, tmp_path / "welcome.pulse", JOURNEY)
    await diagnostics_for(client, uri, 1)

    field = await hover_text(client, uri, position(JOURNEY, "amount >=", delta=1))
    assert "`props.amount`: `float?`" in field
    assert "declared in the event schema (line 9)" in field

    node = await hover_text(client, uri, position(JOURNEY, "wait_5min: delay", delta=2))
    assert "**`wait_5min`**: `delay`" in node
    assert "emits each event unchanged" in node
    assert "inputs: `in` ← `login_filter`" in node
    assert "outputs: `out`, `late` → `split`" in node

    duration = await hover_text(client, uri, position(JOURNEY, "5m)"))
    assert duration == "`5m` = 300000 ms (5 minutes)"

    # Nullable in the schema, but the filter and the key before the sink rule null out (W0007).
    template = await hover_text(client, uri, position(JOURNEY, "userId }}", delta=2))
    assert "`userId`: `string`" in template and "string?" not in template


async def test_hover_uses_utf16_columns(client: LanguageClient, tmp_path):
    # Astral characters take two UTF-16 units and four UTF-8 bytes before the field on this line.
    text = JOURNEY.replace(
        'filter(event_name == "login_success"', 'filter(event_name == "🎉🎉 löggin" || event_name == "login_success"'
    )
    uri = open_document(client, tmp_path / "welcome.pulse", text)
    await diagnostics_for(client, uri, 1)
    result = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position(text, "event_name ==", 1, 3)
        )
    )
    assert "`event_name`: `string`" in result.contents.value
    assert result.range.start == position(text, "event_name ==", 1)


async def test_definition(client: LanguageClient, tmp_path):
    uri = open_document(client, tmp_path / "welcome.pulse", JOURNEY)
    await diagnostics_for(client, uri, 1)

    async def definition(pos):
        result = await client.text_document_definition_async(
            types.DefinitionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
        )
        return result[0] if isinstance(result, list) else result

    node = await definition(position(JOURNEY, "split.big", delta=1))
    assert node.uri == uri
    assert node.range.start == position(JOURNEY, "split: splitter")

    field = await definition(position(JOURNEY, "userId != null", delta=1))
    assert field.range.start == position(JOURNEY, "userId: string?")


async def test_definition_into_a_json_schema_file(client: LanguageClient, tmp_path):
    schema = tmp_path / "events.schema.json"
    schema.write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {"userId": {"type": "string"}, "ts": {"type": "string", "format": "date-time"}},
                "required": ["userId"],
            },
            indent=2,
        )
    )
    text = 'pipeline p\nschema "events.schema.json"\n\nsrc: file-source("in")\nsrc -> f: filter(userId != "") -> out: stdout-sink\n'
    uri = open_document(client, tmp_path / "p.pulse", text)
    diagnostics = await diagnostics_for(client, uri, 1)
    assert [d for d in diagnostics if d.severity == types.DiagnosticSeverity.Error] == []

    schema_type = await client.text_document_definition_async(
        types.DefinitionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position(text, "events.schema"))
    )
    schema_type = schema_type[0] if isinstance(schema_type, list) else schema_type
    assert schema_type.uri == schema.as_uri()

    field = await client.text_document_definition_async(
        types.DefinitionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position(text, "userId !="))
    )
    field = field[0] if isinstance(field, list) else field
    assert field.uri == schema.as_uri()
    assert field.range.start == position(schema.read_text(), '"userId"')


async def test_completion(client: LanguageClient, tmp_path):
    uri = open_document(client, tmp_path / "welcome.pulse", JOURNEY)
    await diagnostics_for(client, uri, 1)

    async def complete(text: str, marker: str, version: int) -> list[str]:
        change(client, uri, version, text.replace(marker, "", 1))
        return await completion_labels(client, uri, position(text, marker))

    # Fields in an expression (the text does not parse while typing).
    labels = await complete(JOURNEY.replace("userId != null)", "userId != null && |)"), "|", 2)
    assert {"event_name", "userId", "ts", "props"} <= set(labels), labels
    assert "lower" in labels
    labels = await complete(JOURNEY.replace("userId != null)", "props.|)"), "|", 3)
    assert labels == ["show_id", "amount"]
    # Fields in a template.
    labels = await complete(JOURNEY.replace("{{ userId }}", "{{ |"), "|", 4)
    assert {"event_name", "userId"} <= set(labels), labels
    # Node types after `id:`.
    labels = await complete(JOURNEY + "late: |\n", "|", 5)
    assert {"filter", "delay", "segmentation", "kafka-sink"} <= set(labels), labels
    # Config keys at the start of an entry of a node block.
    labels = await complete(JOURNEY.replace('  method: "POST"\n', '  method: "POST"\n  |\n'), "|", 6)
    assert {"headers", "timeout", "retries", "body"} <= set(labels), labels
    # Node ids after `->`.
    labels = await complete(JOURNEY + "source -> |\n", "|", 7)
    assert {"login_filter", "wait_5min", "split", "send_push", "rest"} <= set(labels), labels
    # Named outputs after `node.`.
    labels = await complete(JOURNEY + "split.|\n", "|", 8)
    assert labels == ["big", "default"]
    labels = await complete(JOURNEY + "wait_5min.|\n", "|", 9)
    assert labels == ["out", "late"]


async def test_completion_in_a_json_dag(client: LanguageClient, tmp_path):
    text = """{
  "name": "p",
  "schema": {"fields": {"userId": "string", "ts": "timestamp"}},
  "nodes": [
    {"id": "source", "type": "file-source", "config": {"path": "in.jsonl"}},
    {"id": "f", "type": "filter", "config": {"where": "userId != null"}},
    {"id": "out", "type": "stdout-sink"}
  ],
  "edges": ["source -> f", "f -> out"]
}
"""
    uri = open_document(client, tmp_path / "p.json", text, language="json")
    await diagnostics_for(client, uri, 1)
    edited = text.replace('"f -> out"', '"f -> |"')
    change(client, uri, 2, edited.replace("|", ""))
    assert {"source", "f", "out"} <= set(await completion_labels(client, uri, position(edited, "|")))
    edited = text.replace('"type": "stdout-sink"', '"type": "|"')
    change(client, uri, 3, edited.replace("|", ""))
    assert "stdout-sink" in await completion_labels(client, uri, position(edited, "|"))


async def test_formatting_matches_pulsec_fmt(client: LanguageClient, tmp_path):
    messy = "pipeline   p\nsrc:file-source( \"in\" )\nsrc->f:filter(x>1)->out:stdout-sink\n"
    uri = open_document(client, tmp_path / "messy.pulse", messy)
    await diagnostics_for(client, uri, 1)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            options=types.FormattingOptions(tab_size=2, insert_spaces=True),
        )
    )
    assert len(edits) == 1
    expected = tmp_path / "expected.pulse"
    expected.write_text(messy)
    subprocess.run([PULSEC, "fmt", str(expected)], check=True)
    assert edits[0].new_text == expected.read_text()
    assert edits[0].range.start == types.Position(line=0, character=0)


async def test_rename_a_node_across_the_file(client: LanguageClient, tmp_path):
    uri = open_document(client, tmp_path / "welcome.pulse", JOURNEY)
    await diagnostics_for(client, uri, 1)
    pos = position(JOURNEY, "split\nsplit.big", delta=1)
    prepared = await client.text_document_prepare_rename_async(
        types.PrepareRenameParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
    )
    assert prepared.start == position(JOURNEY, "split\nsplit.big")
    edit = await client.text_document_rename_async(
        types.RenameParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos, new_name="router")
    )
    edits = edit.changes[uri]
    assert len(edits) == 4  # the declaration, the chain, and the two branches
    lines = JOURNEY.split("\n")
    for text_edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        line = lines[text_edit.range.start.line]
        start, end = text_edit.range.start.character, text_edit.range.end.character
        assert line[start:end] == "split"
        lines[text_edit.range.start.line] = line[:start] + "router" + line[end:]
    renamed = "\n".join(lines)
    change(client, uri, 2, renamed)
    assert [d for d in await diagnostics_for(client, uri, 2) if d.severity == types.DiagnosticSeverity.Error] == []

    with pytest.raises(Exception, match="already exists"):
        await client.text_document_rename_async(
            types.RenameParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=position(renamed, "rest:"),
                new_name="source",
            )
        )


async def test_references_and_highlights_of_a_node(client: LanguageClient, tmp_path):
    uri = open_document(client, tmp_path / "welcome.pulse", JOURNEY)
    await diagnostics_for(client, uri, 1)
    pos = position(JOURNEY, "split\nsplit.big", delta=1)
    doc = types.TextDocumentIdentifier(uri=uri)
    declared = position(JOURNEY, "split:")
    with_declaration = await client.text_document_references_async(
        types.ReferenceParams(text_document=doc, position=pos, context=types.ReferenceContext(include_declaration=True))
    )
    lines = JOURNEY.split("\n")
    assert len(with_declaration) == 4  # as rename: the declaration, the chain, the two branches
    for location in with_declaration:
        assert location.uri == uri
        line = lines[location.range.start.line]
        assert line[location.range.start.character : location.range.end.character] == "split"
    without = await client.text_document_references_async(
        types.ReferenceParams(text_document=doc, position=pos, context=types.ReferenceContext(include_declaration=False))
    )
    assert len(without) == 3 and all(location.range.start != declared for location in without)
    highlights = await client.text_document_document_highlight_async(
        types.DocumentHighlightParams(text_document=doc, position=pos)
    )
    kinds = {(h.range.start.line, h.range.start.character): h.kind for h in highlights}
    assert len(kinds) == 4
    assert kinds[(declared.line, declared.character)] == types.DocumentHighlightKind.Write
    # Not a node id: nothing to highlight.
    assert await client.text_document_document_highlight_async(
        types.DocumentHighlightParams(text_document=doc, position=position(JOURNEY, "event_name"))
    ) in (None, [])


async def test_document_symbols(client: LanguageClient, tmp_path):
    uri = open_document(client, tmp_path / "welcome.pulse", JOURNEY)
    await diagnostics_for(client, uri, 1)
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert [symbol.name for symbol in symbols] == ["welcome"]
    children = [(child.name, child.detail) for child in symbols[0].children]
    assert children[0] == ("event", "event schema")
    assert ("wait_5min", "delay") in children and ("send_push", "api-sink") in children


async def test_a_panicking_handler_does_not_kill_the_server(client: LanguageClient, tmp_path):
    uri = open_document(client, tmp_path / "welcome.pulse", JOURNEY)
    await diagnostics_for(client, uri, 1)
    with pytest.raises(Exception, match="internal error in pulsec lsp"):
        await client.protocol.send_request_async("pulse/debugPanic", {})
    with pytest.raises(Exception, match="not supported"):
        await client.protocol.send_request_async("pulse/noSuchMethod", {})
    # Still serving.
    assert "`5m` = 300000 ms" in await hover_text(client, uri, position(JOURNEY, "5m)"))
