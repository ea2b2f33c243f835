"""``textnlp serve``: the API under uvicorn (default 127.0.0.1:8000, settings ``api.host/port``).

Before uvicorn starts, the app is prepared (``textnlp.api.app.prepare``: the database, Redis,
the JWT secret, the services), so a weak secret or an unreachable dependency is one line on
stderr and exit 2, not uvicorn's startup traceback and exit 3. With ``--workers`` each worker
process builds its own app; the command then checks the same once, in a platform it closes.

Facing clients (``uvicorn_options`` and ``serving_app``, from ``api.*``):

- ``X-Forwarded-For`` is believed only from ``api.trusted_proxies`` (none by default: uvicorn's
  own default trusts 127.0.0.1, which let any local client pick its address);
- slow clients: idle keep-alive connections close after ``keep_alive_timeout_s``, a request head
  must arrive within ``request_head_timeout_s`` (``textnlp.api.http_protocol``) and its body
  within ``request_body_timeout_s`` (``textnlp.api.request_guard``); heads are at most
  ``max_header_bytes`` and WebSocket messages at most ``max_body_bytes``;
- load: ``max_concurrent_requests`` requests in progress, then 503 at once; uvicorn answers 503
  beyond ``max_connections`` open connections, and queues ``backlog`` unaccepted ones.
  (uvicorn's ``limit_max_requests`` is left off: without a supervisor that restarts workers it
  would stop the server after that many requests.)

Logs: ``configure_logging`` sends uvicorn's lines through the same formatter as ours, which
redacts credentials in URLs (a WebSocket's ``?access_token=`` is logged by uvicorn's handshake
line).
"""

from __future__ import annotations

from typing import Any

import typer

from textnlp.bootstrap import Platform
from textnlp.cli.common import service_settings, settings
from textnlp.config import ApiSettings, Settings
from textnlp.errors import InvalidInput


def preflight(config: Settings) -> None:
    """Build and close what each worker's startup will build (raises ``TextNLPError``)."""
    with Platform(config) as parts:
        parts.auth  # noqa: B018 - the JWT secret's checks, the database and its schema
        parts.buckets  # noqa: B018 - Redis, where there is one
        parts.jobs  # noqa: B018 - the queues and storage


def uvicorn_options(api: ApiSettings) -> dict[str, Any]:
    """uvicorn's limits and proxy trust for these settings (host and port aside)."""
    from textnlp.api.http_protocol import ServeProtocol

    return {
        "http": ServeProtocol,
        "proxy_headers": bool(api.trusted_proxies),
        "forwarded_allow_ips": list(api.trusted_proxies),
        "timeout_keep_alive": api.keep_alive_timeout_s,
        "h11_max_incomplete_event_size": api.max_header_bytes,
        "ws_max_size": api.max_body_bytes,
        "limit_concurrency": api.max_connections,
        "backlog": api.backlog,
        "log_config": None,
    }


def serving_app(app: Any, api: ApiSettings) -> Any:
    """The app as uvicorn serves it: behind the request guard, with the head deadline set."""
    from textnlp.api.http_protocol import use_head_timeout
    from textnlp.api.request_guard import RequestGuard

    use_head_timeout(api.request_head_timeout_s)
    return RequestGuard(
        app,
        max_concurrent=api.max_concurrent_requests,
        body_timeout_s=api.request_body_timeout_s,
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str = typer.Option(
            None, "--host", help="Interface to listen on (default 127.0.0.1)."
        ),
        port: int = typer.Option(None, "--port", min=1, max=65535, help="Port (default 8000)."),
        workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    ) -> None:
        """Serve the REST and WebSocket API (docs at /docs)."""
        import uvicorn

        from textnlp.api.app import create_app, prepare

        config = service_settings()  # the supervisor of --workers logs too
        options = uvicorn_options(config.api)
        host, port = host or config.api.host, port or config.api.port
        check_address(host, port)
        if workers > 1:
            preflight(config)
            # Each worker builds its own app from the environment's settings.
            uvicorn.run(
                "textnlp.cli.serve:app_factory",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                **options,
            )
            return
        app = create_app(config, configure_logs=True)
        prepare(app)
        uvicorn.run(
            serving_app(app, config.api),
            host=host,
            port=port,
            **options,
        )


def check_address(host: str, port: int) -> None:
    """Refuse, before anything starts, an address uvicorn could not listen on (a port in use:
    one line and exit 2, not uvicorn's log lines and exit 3)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InvalidInput(
            f"cannot listen on {host}:{port}: {reason} (choose --host/--port)"
        ) from None


def app_factory() -> object:
    from textnlp.api.app import create_app

    config = settings()
    return serving_app(create_app(config, configure_logs=True), config.api)
