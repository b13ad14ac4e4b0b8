"""Packaging the VS Code extension: `editors/vscode/package.sh` builds a `.vsix` (a zip) that holds
the grammar, the language configuration and the bundled language client, and nothing else heavy."""

import json
import subprocess
import zipfile

from conftest import ROOT

EXTENSION = ROOT / "editors" / "vscode"


def test_package_contains_grammar_and_client():
    manifest = json.loads((EXTENSION / "package.json").read_text())
    vsix = EXTENSION / f"pulse-{manifest['version']}.vsix"
    vsix.unlink(missing_ok=True)
    subprocess.run([str(EXTENSION / "package.sh")], check=True, timeout=240)
    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
        assert "extension/dist/extension.js" in names
        assert "extension/syntaxes/pulse.tmLanguage.json" in names
        assert "extension/language-configuration.json" in names
        assert "extension/package.json" in names
        assert "extension/images/icon.png" in names
        assert "extension/LICENSE.txt" in names or "extension/LICENSE" in names, names
        assert not any("node_modules" in name for name in names), names
        grammar = json.loads(archive.read("extension/syntaxes/pulse.tmLanguage.json"))
        client = archive.read("extension/dist/extension.js").decode()
    assert grammar["scopeName"] == "source.pulse"
    # The bundle carries the language client and starts `pulsec lsp`.
    assert "vscode-languageclient" in client or "LanguageClient" in client
    assert '"lsp"' in client
    assert vsix.stat().st_size < 1_000_000
    contributed = manifest["contributes"]["grammars"][0]
    assert (EXTENSION / contributed["path"]).exists()
    assert manifest["contributes"]["languages"][0]["extensions"] == [".pulse"]


def test_activates_only_where_pulse_lives():
    # `.pulse` files and Pulse JSON DAGs, never every JSON file (settings.json, package.json...).
    manifest = json.loads((EXTENSION / "package.json").read_text())
    events = manifest["activationEvents"]
    assert "onLanguage:json" not in events and "*" not in events, events
    assert set(events) == {
        "onLanguage:pulse",
        "workspaceContains:**/*.pulse",
        "workspaceContains:**/pipeline.json",
        "workspaceContains:**/*.pipeline.json",
    }, events
    assert (EXTENSION / manifest["icon"]).read_bytes().startswith(b"\x89PNG")
    assert manifest["license"] == "Apache-2.0"
