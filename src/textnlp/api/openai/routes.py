"""``install_openai(app)``: the /v1 routers and their state, added to the app."""

from __future__ import annotations

from fastapi import FastAPI

from textnlp.api.openai import chat, completions, embeddings, models
from textnlp.api.openai.ratelimit import RequestWindow
from textnlp.api.openai.schemas import OPENAI_ERROR_RESPONSES

OPENAI_PREFIX = "/v1"


def install_openai(app: FastAPI) -> None:
    """Add the /v1 routes to ``app``."""
    app.state.openai_window = RequestWindow()
    for module in (chat, completions, embeddings, models):
        app.include_router(module.router, prefix=OPENAI_PREFIX, responses=OPENAI_ERROR_RESPONSES)
