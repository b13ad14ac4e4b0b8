"""The Pulse extension in a real VS Code: code-server (VS Code in the browser, installed by
tests/vscode/install-tools.sh) with the packaged `.vsix` installed, driven by headless Chromium
through Selenium.

Environment: `PULSEC` names the pulsec binary (default: `$CARGO_TARGET_DIR/debug/pulsec`, else
target/debug/pulsec); `VSCODE_E2E_ARTIFACTS` the screenshot directory (default:
`$CARGO_TARGET_DIR/vscode-e2e`, else target/vscode-e2e).
"""

import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")).resolve()
PULSEC = pathlib.Path(os.environ.get("PULSEC", TARGET / "debug" / "pulsec")).resolve()
ARTIFACTS = pathlib.Path(os.environ.get("VSCODE_E2E_ARTIFACTS", TARGET / "vscode-e2e")).resolve()
EXTENSION = ROOT / "editors" / "vscode"
WORKSPACE = pathlib.Path(__file__).resolve().parent / "workspace"
# The code-server version is pinned in one place: the install script.
CODE_SERVER_VERSION = re.search(
    r"^CODE_SERVER_VERSION=(\S+)$", (pathlib.Path(__file__).parent / "install-tools.sh").read_text(), re.M
).group(1)
CODE_SERVER = (
    ROOT / "target" / "editor-tools" / f"code-server-{CODE_SERVER_VERSION}" / "node_modules" / "code-server"
)

# The user settings of the test's VS Code: the extension's server binary, and a quiet workbench
# (no welcome page, tips, telemetry, updates or AI panels) so the screenshots show the editor.
# Word-based suggestions are off so that every completion item comes from `pulsec lsp`.
SETTINGS = {
    "pulse.server.path": str(PULSEC),
    "pulse.trace.server": "messages",
    "editor.wordBasedSuggestions": "off",
    "editor.minimap.enabled": False,
    "editor.hover.delay": 200,
    "editor.fontSize": 14,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.enableExperiments": False,
    "workbench.editor.enablePreview": False,
    "workbench.colorTheme": "Default Light Modern",
    "security.workspace.trust.enabled": False,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "extensions.ignoreRecommendations": True,
    "chat.commandCenter.enabled": False,
    "chat.disableAIFeatures": True,
    "window.commandCenter": False,
    "git.enabled": False,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def logs_of(user_data: pathlib.Path) -> str:
    """The extension host's Pulse output channel (the client's and the server's log lines)."""
    texts = []
    for path in sorted(user_data.glob("logs/**/*Pulse*.log")):
        texts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-6000:]}")
    return "\n".join(texts) or "(no Pulse output channel log)"


class CodeServer:
    def __init__(self, base: pathlib.Path):
        self.base = base
        self.user_data = base / "user-data"
        self.extensions = base / "extensions"
        self.workspace = base / "workspace"
        self.port = free_port()
        self.process = None
        self.log = base / "code-server.log"
        # code-server keeps its config and logs under the XDG directories; keep them here.
        self.env = dict(
            os.environ, XDG_CONFIG_HOME=str(base / "config"), XDG_DATA_HOME=str(base / "data"), CS_DISABLE_PROXY="1"
        )

    def command(self, *args: str) -> list[str]:
        return [
            "node",
            str(CODE_SERVER / "out" / "node" / "entry.js"),
            "--config",
            str(self.base / "config.yaml"),
            "--user-data-dir",
            str(self.user_data),
            "--extensions-dir",
            str(self.extensions),
            *args,
        ]

    def install_extension(self, vsix: pathlib.Path):
        result = subprocess.run(
            self.command("--install-extension", str(vsix)),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0 and "successfully installed" in result.stdout, result

    def start(self):
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                self.command(
                    "--auth",
                    "none",
                    "--bind-addr",
                    f"127.0.0.1:{self.port}",
                    "--disable-telemetry",
                    "--disable-update-check",
                    "--disable-workspace-trust",
                    "--disable-getting-started-override",
                    str(self.workspace),
                ),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"code-server exited:\n{self.log.read_text()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"code-server did not listen on {self.port}:\n{self.log.read_text()}")

    def stop(self):
        if self.process and self.process.poll() is None:
            # The session holds the server, its extension host and `pulsec lsp`.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def pulsec_processes(self) -> list[str]:
        """The `pulsec` processes under this code-server (its session holds the extension host
        and whatever it starts)."""
        result = subprocess.run(
            ["ps", "-o", "pid=,args=", "-s", str(self.process.pid)], capture_output=True, text=True, check=True
        )
        return [line.strip() for line in result.stdout.splitlines() if str(PULSEC) in line]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?folder={self.workspace}"


@pytest.fixture(scope="session")
def vsix() -> pathlib.Path:
    """The `.vsix` that package.sh builds from this checkout."""
    assert CODE_SERVER.is_dir(), f"{CODE_SERVER} is missing: run tests/vscode/install-tools.sh"
    assert PULSEC.is_file(), f"{PULSEC} is missing: cargo build -p pulsec"
    version = json.loads((EXTENSION / "package.json").read_text())["version"]
    path = EXTENSION / f"pulse-{version}.vsix"
    path.unlink(missing_ok=True)
    subprocess.run([str(EXTENSION / "package.sh")], check=True, timeout=300, stdout=subprocess.DEVNULL)
    return path


def started_code_server(base: pathlib.Path, vsix: pathlib.Path, workspace: pathlib.Path) -> CodeServer:
    server = CodeServer(base)
    shutil.copytree(workspace, server.workspace)
    (server.user_data / "User").mkdir(parents=True)
    (server.user_data / "User" / "settings.json").write_text(json.dumps(SETTINGS, indent=2))
    server.install_extension(vsix)
    server.start()
    return server


@pytest.fixture(scope="session")
def code_server(tmp_path_factory, vsix):
    """code-server on tests/vscode/workspace: two .pulse files and a JSON DAG."""
    server = started_code_server(tmp_path_factory.mktemp("code-server"), vsix, WORKSPACE)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def json_only_server(tmp_path_factory, vsix):
    """code-server on a workspace with JSON files that are not Pulse DAGs, and no .pulse file."""
    workspace = tmp_path_factory.mktemp("json-only")
    (workspace / "config.json").write_text(json.dumps({"name": "not a pipeline", "nodes": 3}, indent=2))
    (workspace / ".vscode").mkdir()
    (workspace / ".vscode" / "settings.json").write_text(json.dumps({"editor.tabSize": 2}, indent=2))
    server = started_code_server(tmp_path_factory.mktemp("code-server-json"), vsix, workspace)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(code_server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,960",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test leaves a screenshot and the Pulse output channel next to the others."""
    report = yield
    if report.when == "call" and report.failed and "workbench" in item.funcargs:
        workbench = item.funcargs["workbench"]
        workbench.screenshot(f"failed-{item.name}")
        report.sections.append(("Pulse output channel", logs_of(workbench.server.user_data)))
        report.sections.append(("code-server log", workbench.server.log.read_text(errors="replace")[-4000:]))
    return report
