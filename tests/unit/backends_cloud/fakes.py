"""Transport-level fakes for AWS runtime APIs and the SDKs of OpenAI and Anthropic.

``AwsFake`` answers a boto3 client's HTTP requests from a queue of canned responses (hooked on
botocore's ``before-send`` event, so serialisation, signing, parsing, EventStream decoding and
error mapping all run for real) and records the requests it saw. ``event_stream`` encodes
AWS EventStream frames (``application/vnd.amazon.eventstream``: prelude, CRCs, headers).
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        struct.pack("B", len(raw_name))
        + raw_name
        + b"\x07"
        + struct.pack(">H", len(raw_value))
        + raw_value
    )


def event_frame(event_type: str, payload: bytes, *, message_type: str = "event") -> bytes:
    headers = b"".join(
        [
            _header(":event-type", event_type) if message_type == "event" else b"",
            _header(":exception-type", event_type) if message_type == "exception" else b"",
            _header(":content-type", "application/json"),
            _header(":message-type", message_type),
        ]
    )
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + payload
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def bedrock_chunk(body: dict[str, Any]) -> bytes:
    """An InvokeModelWithResponseStream ``chunk`` event carrying a provider's JSON chunk."""
    encoded = base64.b64encode(json.dumps(body).encode()).decode()
    return event_frame("chunk", json.dumps({"bytes": encoded}).encode())


def converse_event(event_type: str, body: dict[str, Any]) -> bytes:
    return event_frame(event_type, json.dumps(body).encode())


def payload_part(data: bytes) -> bytes:
    """A SageMaker ``PayloadPart`` event (its bytes are the raw event payload)."""
    return event_frame("PayloadPart", data)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Raw:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield from self._chunks

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        return b"".join(self._chunks)


@dataclass
class Canned:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    frames: list[bytes] | None = None  # an event stream instead of ``body``


@dataclass
class Unreachable:
    """A request that gets no answer: botocore's HTTP layer raises ``error`` (one of its
    ``EndpointConnectionError``, ``ReadTimeoutError``...), naming the URL it sent to."""

    error: Callable[..., Exception]
    extra: dict[str, Any] = field(default_factory=dict)


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Canned:
    return Canned(
        status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


def aws_error(code: str, message: str, status: int = 400, **extra: Any) -> Canned:
    body = {"message": message, **extra}
    return Canned(
        status,
        json.dumps(body).encode(),
        {
            "Content-Type": "application/json",
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/",
        },
    )


def stream_response(frames: list[bytes]) -> Canned:
    return Canned(200, b"", {"Content-Type": "application/vnd.amazon.eventstream"}, frames)


@dataclass
class SentRequest:
    url: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class AwsFake:
    """Hooks a boto3 client and answers from ``responses`` in order."""

    def __init__(self, client: Any) -> None:
        self.responses: list[Canned | Unreachable] = []
        self.requests: list[SentRequest] = []
        client.meta.events.register("before-send", self._send)

    def queue(self, *responses: Canned | Unreachable) -> AwsFake:
        self.responses.extend(responses)
        return self

    def _send(self, request: Any, **kwargs: Any) -> AWSResponse:
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        self.requests.append(
            SentRequest(request.url, {k: _text(v) for k, v in request.headers.items()}, body or b"")
        )
        if not self.responses:
            raise AssertionError(f"unexpected request to {request.url}")
        canned = self.responses.pop(0)
        if isinstance(canned, Unreachable):
            raise canned.error(endpoint_url=request.url, **canned.extra)
        chunks = canned.frames if canned.frames is not None else [canned.body]
        return AWSResponse(request.url, canned.status, canned.headers, _Raw(chunks))
