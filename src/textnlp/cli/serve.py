"""``textnlp serve``: the API under uvicorn (default 127.0.0.1:8000, settings ``api.host/port``).

Before uvicorn starts, the app is prepared (``textnlp.api.app.prepare``: the database, Redis,
the JWT secret, the services), so a weak secret or an unreachable dependency is one line on
stderr and exit 2, not uvicorn's startup traceback and exit 3. With ``--workers`` each worker
process builds its own app; the command then checks the same once, in a platform it closes.

Logs: ``configure_logging`` sends uvicorn's lines through the same formatter as ours, which
redacts credentials in URLs (a WebSocket's ``?access_token=`` is logged by uvicorn's handshake
line).
"""

from __future__ import annotations

import typer

from textnlp.bootstrap import Platform
from textnlp.cli.common import settings
from textnlp.config import Settings


def preflight(config: Settings) -> None:
    """Build and close what each worker's startup will build (raises ``TextNLPError``)."""
    with Platform(config) as parts:
        parts.auth  # noqa: B018 - the JWT secret's checks, the database and its schema
        parts.rate_limiter  # noqa: B018 - Redis, where there is one
        parts.jobs  # noqa: B018 - the queues and storage


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

        config = settings()
        if workers > 1:
            preflight(config)
            # Each worker builds its own app from the environment's settings.
            uvicorn.run(
                "textnlp.cli.serve:app_factory",
                factory=True,
                host=host or config.api.host,
                port=port or config.api.port,
                workers=workers,
                log_config=None,
            )
            return
        app = create_app(config, configure_logs=True)
        prepare(app)
        uvicorn.run(
            app,
            host=host or config.api.host,
            port=port or config.api.port,
            log_config=None,
            proxy_headers=True,
        )


def app_factory() -> object:
    from textnlp.api.app import create_app

    return create_app(settings(), configure_logs=True)
