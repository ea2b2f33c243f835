"""What ``textnlp serve`` hands uvicorn: proxy trust and slow-client limits from ``api.*``."""

from __future__ import annotations

from textnlp.api.http_protocol import ServeProtocol
from textnlp.api.request_guard import RequestGuard
from textnlp.cli.serve import serving_app, uvicorn_options
from textnlp.config import load_settings


def test_no_forwarded_header_is_believed_by_default() -> None:
    options = uvicorn_options(load_settings(environ={}).api)
    # uvicorn's own default would trust 127.0.0.1: any local client could pick its address.
    assert options["proxy_headers"] is False and options["forwarded_allow_ips"] == []


def test_limits_come_from_the_settings() -> None:
    api = load_settings(
        environ={},
        api={
            "trusted_proxies": ["10.0.0.0/16"],
            "keep_alive_timeout_s": 3,
            "max_header_bytes": 8192,
            "max_connections": 300,
            "backlog": 64,
            "max_body_bytes": 4096,
            "max_concurrent_requests": 7,
            "request_head_timeout_s": 4,
            "request_body_timeout_s": 6,
        },
    ).api
    options = uvicorn_options(api)
    assert options["proxy_headers"] is True and options["forwarded_allow_ips"] == ["10.0.0.0/16"]
    assert options["http"] is ServeProtocol
    assert (options["timeout_keep_alive"], options["h11_max_incomplete_event_size"]) == (3, 8192)
    assert (options["limit_concurrency"], options["backlog"], options["ws_max_size"]) == (
        300,
        64,
        4096,
    )
    guarded = serving_app(object(), api)
    assert isinstance(guarded, RequestGuard)
    assert (guarded.max_concurrent, guarded.body_timeout_s) == (7, 6)
    assert ServeProtocol.head_timeout_s == 4
    serving_app(object(), load_settings(environ={}).api)  # back to the default for others
