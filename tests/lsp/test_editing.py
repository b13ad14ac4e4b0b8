"""End-to-end tests of the editing features of `pulsec lsp` through a real LSP client: semantic
tokens, signature help, the quick fixes that edit the flow (a null test before a sink, a chain
split to name a port), each applied and re-checked, and what a JSON DAG with a syntax error keeps
from its last version without one."""

from lsprotocol import types
from pytest_lsp import LanguageClient

from conftest import ROOT
from test_server import change, diagnostics_for, hover_text, open_document, position

EXAMPLE = ROOT / "examples" / "welcome-unless-watched" / "pipeline.pulse"


async def semantic_tokens(client: LanguageClient, uri: str, text: str) -> dict[tuple[int, int], tuple[str, str, list[str]]]:
    """The decoded token stream: (line, column) -> (text, token type, modifiers)."""
    result = await client.text_document_semantic_tokens_full_async(
        types.SemanticTokensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    legend = client.initialize_result.capabilities.semantic_tokens_provider.legend
    lines = text.split("\n")
    decoded = {}
    line = column = 0
    data = result.data
    for idx in range(0, len(data), 5):
        delta_line, delta_start, length, token_type, modifiers = data[idx : idx + 5]
        line += delta_line
        column = delta_start if delta_line else column + delta_start
        names = [name for bit, name in enumerate(legend.token_modifiers) if modifiers & (1 << bit)]
        # The test texts are ASCII: UTF-16 columns are character columns.
        decoded[(line, column)] = (lines[line][column : column + length], legend.token_types[token_type], names)
    return decoded


def token_at(tokens, text: str, marker: str, nth: int = 0, delta: int = 0):
    pos = position(text, marker, nth, delta)
    return tokens.get((pos.line, pos.character))


async def test_semantic_tokens_of_an_example(client: LanguageClient, tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8")
    uri = open_document(client, tmp_path / "pipeline.pulse", text)
    await diagnostics_for(client, uri, 1)
    tokens = await semantic_tokens(client, uri, text)
    assert token_at(tokens, text, "userId: string?") == ("userId", "property", ["declaration"])
    assert token_at(tokens, text, "events: file-source") == ("events", "variable", ["declaration"])
    assert token_at(tokens, text, "file-source(") == ("file-source", "type", [])
    assert token_at(tokens, text, "event_name == \"login") == ("event_name", "property", [])
    assert token_at(tokens, text, "wait_5min") == ("wait_5min", "variable", ["declaration"])
    assert token_at(tokens, text, "5m) by") == ("5m", "number", [])
    assert token_at(tokens, text, "userId\n  -> watched") == ("userId", "property", [])
    assert token_at(tokens, text, "flow") == ("flow", "enumMember", [])
    assert token_at(tokens, text, "watched {") == ("watched", "variable", [])
    assert token_at(tokens, text, "userId }}") == ("userId", "property", [])
    assert token_at(tokens, text, "30s") == ("30s", "number", [])
    # Keywords and strings are the TextMate grammar's: no token.
    assert token_at(tokens, text, "pipeline") is None
    assert token_at(tokens, text, "\"events.jsonl\"") is None


async def test_semantic_tokens_of_a_half_typed_file(client: LanguageClient, tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8")
    # Half-typed: the filter's condition stops in the middle of a comparison.
    broken = text.replace('event_name == "login_success" && userId != null)', "event_name == ")
    assert broken != text
    uri = open_document(client, tmp_path / "pipeline.pulse", broken)
    diagnostics = await diagnostics_for(client, uri, 1)
    assert any(d.severity == types.DiagnosticSeverity.Error for d in diagnostics)
    tokens = await semantic_tokens(client, uri, broken)
    # The items that parsed keep their tokens: the event schema, the declarations before, the sink block.
    assert token_at(tokens, broken, "userId: string?") == ("userId", "property", ["declaration"])
    assert token_at(tokens, broken, "events: file-source") == ("events", "variable", ["declaration"])
    assert token_at(tokens, broken, "has-done-event") == ("has-done-event", "type", [])
    assert token_at(tokens, broken, "eventTime: ts", delta=11) == ("ts", "property", [])
    # The broken flow has none.
    assert token_at(tokens, broken, "wait_5min") is None


async def signature_at(client: LanguageClient, uri: str, pos: types.Position):
    help = await client.text_document_signature_help_async(
        types.SignatureHelpParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
    )
    if help is None:
        return None
    signature = help.signatures[help.active_signature]
    start, end = signature.parameters[help.active_parameter].label
    return signature.label, signature.label[start:end]


async def test_signature_help_follows_the_commas(client: LanguageClient, tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8")
    # Half-typed, as in the editor: the call is not closed yet.
    typed = text.replace('filter(event_name == "login_success" && userId != null)', 'filter(coalesce(userId, "x", ')
    uri = open_document(client, tmp_path / "pipeline.pulse", typed)
    await diagnostics_for(client, uri, 1)
    call = 'filter(coalesce(userId, "x", '
    assert await signature_at(client, uri, position(typed, call, delta=len("filter(coalesce("))) == (
        "coalesce(values, ...)",
        "values",
    )
    assert await signature_at(client, uri, position(typed, call, delta=len(call))) == ("coalesce(values, ...)", "...")
    # The shorthand arguments of a node type: `delay(5m)` sets `duration`.
    assert await signature_at(client, uri, position(typed, "delay(5m)", delta=len("delay("))) == (
        "delay(duration)",
        "duration",
    )
    # Outside any parentheses, none.
    assert await signature_at(client, uri, position(typed, "by userId", delta=3)) is None

    typed = text.replace('api-sink("${NOTIFY_URL}/v1/push")', 'capping(3, ')
    change(client, uri, 2, typed)
    await diagnostics_for(client, uri, 2)
    assert await signature_at(client, uri, position(typed, "capping(3, ", delta=len("capping(3, "))) == (
        "capping(max, window)",
        "window",
    )
    assert await signature_at(client, uri, position(typed, "capping(3, ", delta=len("capping("))) == (
        "capping(max, window)",
        "max",
    )
    # In a window-aggregate, `max(` is the aggregate function of one field, not the expression's.
    typed = text.replace('api-sink("${NOTIFY_URL}/v1/push")', "window-aggregate by userId {\n  aggregate top: max(")
    change(client, uri, 3, typed)
    await diagnostics_for(client, uri, 3)
    assert await signature_at(client, uri, position(typed, "top: max(", delta=len("top: max("))) == ("max(field)", "field")


NULLABLE = """\
pipeline nullable
event {
  event_name: string
  userId: string?
}

events: file-source("events.jsonl")
split: splitter { route big: event_name == "purchase" }

events -> logins: filter(event_name == "login" || event_name == "signup")
  -> push: api-sink("https://notify.example/v1/push/{{ userId }}")
events -> split -> bought: stdout-sink
"""


async def apply_fix(client: LanguageClient, uri: str, text: str, version: int, diagnostic) -> str:
    """Applies the one quick fix offered for `diagnostic` and returns the new text (sent as `version`)."""
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=diagnostic.range,
            context=types.CodeActionContext(diagnostics=[diagnostic]),
        )
    )
    actions = [action for action in actions or [] if action.diagnostics and action.diagnostics[0].code == diagnostic.code]
    assert len(actions) == 1, actions
    (edit,) = actions[0].edit.changes[uri]
    lines = text.split("\n")

    def offset(pos: types.Position) -> int:
        return sum(len(line) + 1 for line in lines[: pos.line]) + pos.character

    text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    change(client, uri, version, text)
    return text


async def test_quick_fixes_that_edit_the_flow(client: LanguageClient, tmp_path):
    uri = open_document(client, tmp_path / "nullable.pulse", NULLABLE)
    diagnostics = await diagnostics_for(client, uri, 1)
    # The graph error first: templates are checked once the graph resolves.
    assert [d.code for d in diagnostics] == ["E0209"], diagnostics

    # The splitter in the middle of the chain: the chain is split, the route named.
    text = await apply_fix(client, uri, NULLABLE, 2, diagnostics[0])
    assert text.endswith("events -> split\nsplit.big -> bought: stdout-sink\n"), text
    diagnostics = await diagnostics_for(client, uri, 2)
    assert [d.code for d in diagnostics] == ["W0007"], diagnostics

    # The template may read a null `userId`: the filter before the sink gets the test.
    text = await apply_fix(client, uri, text, 3, diagnostics[0])
    assert 'filter((event_name == "login" || event_name == "signup") && userId != null)' in text
    assert list(await diagnostics_for(client, uri, 3)) == []


KEYED = """\
pipeline keyed
event {
  event_name: string
  userId: string?
}

events: file-source("events.jsonl")
events -> counts: segmentation(1h) by userId { counter plays_1d over 1d }
  -> profiles: stdout-sink
"""


async def test_a_nullable_key_gets_a_hint_with_the_null_test(client: LanguageClient, tmp_path):
    uri = open_document(client, tmp_path / "keyed.pulse", KEYED)
    (hint,) = await diagnostics_for(client, uri, 1)
    # An editor hint, not a compiler warning: no code, hint severity, on the key.
    assert (hint.code, hint.severity, hint.source) == (None, types.DiagnosticSeverity.Hint, "pulse"), hint
    assert hint.range.start == position(KEYED, "userId {")
    assert "dead letters" in hint.message and "userId != null" in hint.message, hint.message

    text = await apply_fix(client, uri, KEYED, 2, hint)
    assert "events -> userId_not_null: filter(userId != null) -> counts: segmentation(1h) by userId" in text, text
    assert list(await diagnostics_for(client, uri, 2)) == []


async def test_a_json_dag_with_a_syntax_error_keeps_its_last_good_analysis(client: LanguageClient, tmp_path):
    example = ROOT / "examples" / "welcome-unless-watched" / "pipeline.json"
    good = example.read_text(encoding="utf-8").replace('"{{ userId }}"', '"{{ usr_id }}"')
    uri = open_document(client, tmp_path / "pipeline.json", good, language="json")
    diagnostics = await diagnostics_for(client, uri, 1)
    assert [d.code for d in diagnostics] == ["E0205"], diagnostics
    assert (await hover_text(client, uri, position(good, '"userId"\n', 1, delta=1))).startswith("`userId`: `string`")

    # Half-typed: the filter's type is an unterminated string, above the misspelt field.
    broken = good.replace('"type": "filter"', '"type": "filt', 1)
    change(client, uri, 2, broken)
    diagnostics = await diagnostics_for(client, uri, 2)
    codes = [d.code for d in diagnostics]
    assert "E0001" in codes
    # The checker does not run past a JSON syntax error; its last diagnostics stay, moved with the text.
    (kept,) = [d for d in diagnostics if d.code == "E0205"]
    assert kept.range.start == position(broken, "usr_id")
    # The delay after the broken filter: its key's type comes from the last good analysis.
    assert (await hover_text(client, uri, position(broken, '"userId"\n', 1, delta=1))).startswith("`userId`: `string`")
