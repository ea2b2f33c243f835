"""X-Ray subsegments for a Lambda handler's AWS calls, with the standard library only.

With active tracing, Lambda records the function's segment and hands the function its trace
header (``_X_AMZN_TRACE_ID``: ``Root=...;Parent=<the function segment>;Sampled=1``) and the
X-Ray daemon's address (``AWS_XRAY_DAEMON_ADDRESS``). A call made inside ``aws_subsegment``
is sent to the daemon over UDP as a subsegment of that segment, in the X-Ray segment document
format (namespace ``aws``), which draws the call's edge on the service map (the design's
"Lambda -> DynamoDB (Session Store)"). The asset carries no X-Ray SDK or OpenTelemetry: this
is the part of them the authorizer needs. Outside Lambda, or unsampled, it does nothing; a
failure to send is ignored (tracing never changes a verdict).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TRACE_HEADER_VARIABLE = "_X_AMZN_TRACE_ID"
DAEMON_VARIABLE = "AWS_XRAY_DAEMON_ADDRESS"
#: Each UDP datagram to the daemon starts with this header line.
PROTOCOL_HEADER = '{"format": "json", "version": 1}\n'


def trace_context(header: str) -> tuple[str, str] | None:
    """(trace id, parent segment id) of a sampled trace header; None otherwise."""
    fields = dict(part.split("=", 1) for part in header.replace(" ", "").split(";") if "=" in part)
    if fields.get("Sampled") != "1" or not fields.get("Root") or not fields.get("Parent"):
        return None
    return fields["Root"], fields["Parent"]


def daemon_address(value: str) -> tuple[str, int] | None:
    """``host:port``, or the UDP half of ``tcp:host:port udp:host:port``."""
    for part in value.split():
        host, _, port = part.removeprefix("udp:").rpartition(":")
        if part.startswith("tcp:") or not host or not port.isdigit():
            continue
        return host, int(port)
    return None


def subsegment_document(
    name: str, trace: tuple[str, str], start: float, end: float, aws: dict[str, Any], fault: bool
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": name,
        "id": secrets.token_hex(8),
        "trace_id": trace[0],
        "parent_id": trace[1],
        "type": "subsegment",
        "namespace": "aws",
        "start_time": start,
        "end_time": end,
        "aws": aws,
    }
    if fault:
        document["fault"] = True
    return document


@contextmanager
def aws_subsegment(name: str, **aws: Any) -> Iterator[str | None]:
    """Record the block as a call to the AWS service ``name`` (``"DynamoDB"``); ``aws`` holds
    the call's details (``operation``, ``region``, ``table_names``...). Yields the trace
    header that continues the trace from this call (Step Functions' ``traceHeader``), or None
    when nothing is traced."""
    trace = trace_context(os.environ.get(TRACE_HEADER_VARIABLE, ""))
    daemon = daemon_address(os.environ.get(DAEMON_VARIABLE, ""))
    if trace is None or daemon is None:
        yield None
        return
    subsegment_id = secrets.token_hex(8)
    start = time.time()
    fault = False
    try:
        yield f"Root={trace[0]};Parent={subsegment_id};Sampled=1"
    except BaseException:
        fault = True
        raise
    finally:
        document = subsegment_document(name, trace, start, time.time(), aws, fault)
        document["id"] = subsegment_id
        _send(daemon, PROTOCOL_HEADER + json.dumps(document))


def _send(daemon: tuple[str, int], message: str) -> None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), daemon)
    except OSError:
        pass  # the daemon is the Lambda service's; a lost subsegment is only a lost edge
