"""``textnlp serve``: the API under uvicorn (default 127.0.0.1:8000, settings ``api.host/port``)."""

from __future__ import annotations

import typer

from textnlp.cli.common import settings


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

        from textnlp.api.app import create_app

        config = settings()
        if workers > 1:
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
