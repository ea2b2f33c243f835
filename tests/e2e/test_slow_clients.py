"""``textnlp serve`` as a process against slow and many clients, on raw sockets: a connection
that sends nothing, a head or a body that never completes, an idle keep-alive connection are
all closed by the server within their configured time; beyond the concurrency limit a request
answers 503 at once; a forged ``X-Forwarded-For`` buys no login guesses.

The server runs with short limits (1 s head, 2 s body, 1 s keep-alive, 2 requests in progress).
Each test asserts that the server closed the connection before a generous client-side timeout,
never how fast.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, stop_process, wait_for_port

pytestmark = pytest.mark.slow
PASSWORD = "e2e-password-123"
TEXTNLP = [sys.executable, "-m", "textnlp.cli.main"]
#: How long the client waits for the server to act: far beyond every configured limit.
PATIENCE_S = 15.0
LIMITS = {
    "TEXTNLP_API__REQUEST_HEAD_TIMEOUT_S": "1",
    "TEXTNLP_API__REQUEST_BODY_TIMEOUT_S": "2",
    "TEXTNLP_API__KEEP_ALIVE_TIMEOUT_S": "1",
    "TEXTNLP_API__MAX_CONCURRENT_REQUESTS": "2",
    # The default burst, refilling too slowly for a slow machine's guesses to earn one back.
    "TEXTNLP_API__LOGIN_LIMIT_PER_USERNAME": "[0.0001, 10]",
}


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with served(tmp_path_factory.mktemp("slow-clients"), LIMITS) as chosen:
        yield chosen


@contextmanager
def served(home: Path, limits: dict[str, str]) -> Iterator[int]:
    """``textnlp serve`` with ``limits`` and a user ``erin``; yields its port."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TEXTNLP_")},
        **{k: v for k, v in os.environ.items() if k.startswith("TEXTNLP_TEST_")},
        "TEXTNLP_HOME": str(home / "textnlp-home"),
        **limits,
    }
    created = subprocess.run(
        [*TEXTNLP, "users", "create", "erin", "--password-stdin"],
        input=PASSWORD,
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    chosen = free_port()
    with (home / "server.log").open("w") as log:
        proc = subprocess.Popen(
            [*TEXTNLP, "serve", "--port", str(chosen)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
        )
        try:
            wait_for_port(chosen, timeout=90, proc=proc)  # type: ignore[arg-type]
            yield chosen
        finally:
            stop_process(proc)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE_S)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; ``socket.timeout`` if it never does."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], Any]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk, "closed inside a body"
        body += chunk
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


def request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def held_body(port: int, path: str = "/api/v1/auth/login") -> socket.socket:
    """A request whose head came and whose body never will: in progress until its deadline."""
    sock = connect(port)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
        + b'Content-Length: 100\r\n\r\n{"username":'
    )
    return sock


def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    with connect(port) as sock:
        assert read_until_closed(sock) == b""  # closed, without an answer to no request


def test_a_head_that_never_completes_answers_408_and_is_closed(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /api/v1/admin/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"request_timeout"' in answer


def test_a_request_that_is_not_http_answers_400_in_the_error_shape(port: int) -> None:
    """uvicorn answered it in plain text ("Invalid HTTP request received.")."""
    with connect(port) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        status, headers, body = read_response(sock)
    assert status == 400 and headers["content-type"] == "application/json"
    assert body["error"]["type"] == "invalid_request" and body["error"]["message"]


def test_a_head_sent_a_byte_at_a_time_is_cut_off(port: int) -> None:
    head = request("GET", "/api/v1/admin/health", X_Padding="p" * 200)
    with connect(port) as sock:
        for byte in head:  # 4 bytes a second: a minute for the whole head
            readable, _, _ = select.select([sock], [], [], 0.25)
            if readable:
                break
            sock.sendall(bytes([byte]))
        else:
            pytest.fail("the server waited for the whole trickled head")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_a_client_still_sending_a_body_too_large_reads_the_413(port: int) -> None:
    """The 413 comes from the head while the body is still arriving, more of it than the server
    reads: the server lingers, so the client reads the answer and the end, not a reset."""
    with connect(port) as sock:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n" + b"x" * 1_000_000
        )
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"payload_too_large"' in answer


def test_a_body_that_never_completes_answers_408_and_is_closed(port: int) -> None:
    with held_body(port) as sock:
        status, headers, body = read_response(sock)
        assert status == 408 and body["error"]["type"] == "request_timeout"
        assert headers["connection"] == "close"
        assert read_until_closed(sock) == b""


def test_a_v1_body_that_never_completes_answers_in_openais_shape(port: int) -> None:
    with held_body(port, "/v1/chat/completions") as sock:
        status, _, body = read_response(sock)
    assert status == 408 and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "request_timeout" and body["error"]["param"] is None


def test_an_idle_keep_alive_connection_is_closed(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(request("GET", "/api/v1/admin/health"))
        status, _, _ = read_response(sock)
        assert status == 200
        assert read_until_closed(sock) == b""


def test_beyond_the_concurrency_limit_requests_answer_503_at_once(port: int) -> None:
    held = [held_body(port), held_body(port)]
    try:
        time.sleep(0.3)  # both heads are read: two requests in progress, the limit
        with connect(port) as sock:
            sock.sendall(request("GET", "/api/v1/models/list"))
            status, headers, body = read_response(sock)
            assert status == 503 and headers["retry-after"] == "1"
            assert body["error"]["type"] == "service_unavailable"
            # The health probe is not refused for the server being busy.
            sock.sendall(request("GET", "/api/v1/admin/health"))
            assert read_response(sock)[0] == 200
        with connect(port) as sock:  # in OpenAI's shape under /v1
            sock.sendall(request("GET", "/v1/models"))
            status, _, body = read_response(sock)
            assert status == 503 and body["error"]["type"] == "server_error"
            assert body["error"]["code"] == "service_unavailable" and "param" in body["error"]
        for sock in held:
            assert read_response(sock)[0] == 408
    finally:
        for sock in held:
            sock.close()
    with connect(port) as sock:  # the slots are free again
        sock.sendall(request("GET", "/api/v1/models/list"))
        assert read_response(sock)[0] == 401


def test_beyond_the_connection_limit_a_request_answers_503_in_the_error_shape(
    tmp_path: Path,
) -> None:
    """uvicorn's own refusal past ``api.max_connections`` was plain text, without
    ``Retry-After``: clients that read the error JSON could not tell it was the server's load."""
    limits = {"TEXTNLP_API__MAX_CONNECTIONS": "3", "TEXTNLP_API__REQUEST_HEAD_TIMEOUT_S": "30"}
    with served(tmp_path, limits) as chosen:
        idle = [connect(chosen), connect(chosen)]  # with the next one, the limit
        try:
            time.sleep(0.3)  # both accepted
            for path, shape in (("/api/v1/models/list", "native"), ("/v1/models", "openai")):
                with connect(chosen) as sock:
                    sock.sendall(request("GET", path))
                    status, headers, body = read_response(sock)
                    assert status == 503 and headers["retry-after"] == "1", path
                    assert headers["content-type"] == "application/json"
                    error = body["error"]
                    assert "connection" in error["message"]
                    if shape == "openai":
                        assert error["type"] == "server_error"
                        assert error["code"] == "service_unavailable"
                    else:
                        assert error["type"] == "service_unavailable"
        finally:
            for sock in idle:
                sock.close()


def test_a_forged_forwarded_for_buys_no_login_guesses(port: int) -> None:
    statuses = []
    for n in range(14):
        body = json.dumps({"username": "erin", "password": "wrong-guess"}).encode()
        with connect(port) as sock:
            sock.sendall(
                request("POST", "/api/v1/auth/login", body, X_Forwarded_For=f"192.0.2.{n}")
            )
            statuses.append(read_response(sock)[0])
    assert statuses == [401] * 10 + [429] * 4
