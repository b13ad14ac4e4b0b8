"""`pulsec lsp` at the wire level, with a minimal JSON-RPC client: malformed requests get error
responses, a panicking handler answers with an error and the server keeps serving, and the
server exits cleanly after `shutdown` + `exit`."""

import json
import subprocess

from conftest import PULSEC

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
METHOD_NOT_FOUND = -32601


class RawClient:
    def __init__(self):
        self.process = subprocess.Popen([PULSEC, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next_id = 0

    def send(self, message: dict):
        body = json.dumps(message).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def send_raw(self, body: bytes):
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def receive(self) -> dict:
        length = None
        while True:
            line = self.process.stdout.readline()
            assert line, "the server closed its output"
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return json.loads(self.process.stdout.read(length))

    def request(self, method: str, params) -> dict:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            message = self.receive()
            if message.get("id") == self.next_id and "method" not in message:
                return message

    def notify(self, method: str, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})


def test_malformed_requests_get_errors_and_the_server_lives_on(tmp_path):
    client = RawClient()
    try:
        initialized = client.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        assert initialized["result"]["capabilities"]["hoverProvider"] is True
        client.notify("initialized", {})
        uri = (tmp_path / "p.pulse").as_uri()
        text = 'pipeline p\nsrc: file-source("in")\nsrc -> d: delay(5m) -> out: stdout-sink\n'
        client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "pulse", "version": 1, "text": text}})

        bad = client.request("textDocument/hover", {"textDocument": 42})
        assert bad["error"]["code"] == INVALID_PARAMS
        panicked = client.request("pulse/debugPanic", None)
        assert panicked["error"]["code"] == INTERNAL_ERROR
        assert "deliberate panic" in panicked["error"]["message"]
        unknown = client.request("workspace/noSuchThing", {})
        assert unknown["error"]["code"] == METHOD_NOT_FOUND
        # A position far outside the document is clamped, not a crash.
        far = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 999, "character": 999}})
        assert "error" not in far
        # Hover on a document that was never opened is an error response.
        closed = client.request("textDocument/hover", {"textDocument": {"uri": "file:///nowhere.pulse"}, "position": {"line": 0, "character": 0}})
        assert closed["error"]["code"] == INVALID_PARAMS
        hover = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 2, "character": 17}})
        assert "300000 ms" in hover["result"]["contents"]["value"]

        assert client.request("shutdown", None)["result"] is None
        client.notify("exit", None)
        assert client.process.wait(timeout=10) == 0
    finally:
        if client.process.poll() is None:
            client.process.kill()
