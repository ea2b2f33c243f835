"""A priced OpenAI-compatible server on 127.0.0.1 for the end-to-end cost tests: OpenAI
cannot be reached from here, so its chat completions API is faked at the HTTP level (the
bodies of ``tests.support.priced_backend``, in the shape of the OpenAI API reference), and the
real ``openai`` backend of a real ``textnlp`` process talks to it over TCP::

    with priced_server() as base_url:
        run_cli(tmp_path, ..., models=priced_models(base_url), env=PRICED_ENV)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2

from tests.support.priced_backend import PRICE, answer

#: The settings that price ``fake-priced`` (USD per 1K tokens).
PRICED_ENV = {"TEXTNLP_MODELS__PRICES": json.dumps({"fake-priced": PRICE})}


def priced_models(base_url: str) -> str:
    """A ``models.yaml`` whose ``fake-priced`` is the ``openai`` backend at ``base_url``."""
    return f"""
models:
  - id: fake-priced
    backend: openai
    endpoint: {base_url}
    context_length: 4096
    options: {{flavour: openai, api: chat}}
"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (the http.server name)
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if not self.path.endswith("/chat/completions"):
            self._send(404, {"content-type": "application/json"}, b'{"error": {"message": "no"}}')
            return
        url = f"http://{self.headers.get('host')}{self.path}"
        response = answer(httpx2.Request("POST", url, content=body))
        self._send(response.status_code, dict(response.headers), response.content)

    def _send(self, status: int, headers: dict[str, str], content: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", headers.get("content-type", "application/json"))
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: the test's output is the CLI's."""


@contextmanager
def priced_server() -> Iterator[str]:
    """The server's base URL (``http://127.0.0.1:PORT/v1``) while it runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
