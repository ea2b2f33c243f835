"""Admin (administrators only; anyone else gets 403): the health of every dependency
(``HealthChecker``, what ``/api/v1/admin/health`` answers), each model's availability and
circuit state (``ModelPool``), clearing the response cache (what ``POST
/api/v1/admin/cache/clear`` does) and the users with their spending (``SpendingService``).

A user's spend is what their direct generations and jobs have cost in all (the platform keeps
no monthly figure); the cap is their own or the settings' default. The list shows the first
``USERS_SHOWN`` users by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from textnlp.api.console.csrf import CsrfChecked
from textnlp.api.console.render import is_htmx, page
from textnlp.api.console.session import ConsoleAdmin
from textnlp.api.health import HealthChecker
from textnlp.services.generation import GenerationService
from textnlp.services.spending import SpendingService, UserSpending

router = APIRouter(prefix="/admin")

USERS_SHOWN = 500


@dataclass(frozen=True)
class ModelRow:
    id: str
    backend: str
    provider: str
    available: bool
    loaded: bool
    #: closed, open, half-open; None: a local model, or a remote one not called yet.
    circuit: str | None
    failures: int
    detail: str


def model_rows(generation: GenerationService) -> list[ModelRow]:
    loaded = set(generation.loaded_models())
    rows = []
    for info in generation.models():
        state = generation.pool.circuit(info.id)
        rows.append(
            ModelRow(
                id=info.id,
                backend=info.backend,
                provider=info.provider,
                available=info.available,
                loaded=info.id in loaded,
                circuit=state.state.replace("_", "-") if state is not None else None,
                failures=state.consecutive_failures if state is not None else 0,
                detail=info.reason,
            )
        )
    return rows


def _users(spending: SpendingService) -> list[UserSpending]:
    return spending.users(USERS_SHOWN)


async def _context(request: Request) -> dict[str, Any]:
    state = request.app.state
    checker: HealthChecker = state.health
    return {
        "health": await checker.check(),
        "models": await run_in_threadpool(model_rows, state.generation),
        "users": await run_in_threadpool(_users, state.spending),
        "users_shown": USERS_SHOWN,
        "cache_enabled": state.generation.cache is not None,
        "cleared": None,
    }


@router.get("")
async def admin_page(request: Request, user: ConsoleAdmin) -> Response:
    return page(request, "admin.html", await _context(request), user=user)


@router.post("/cache/clear")
async def clear_cache(request: Request, user: ConsoleAdmin, _csrf: CsrfChecked) -> Response:
    """Empty the response cache; htmx gets the message, a plain form the page again."""
    cleared = await run_in_threadpool(request.app.state.generation.clear_cache)
    noun = "entry" if cleared == 1 else "entries"
    message = f"Response cache cleared: {cleared} {noun} removed."
    if is_htmx(request):
        return page(request, "_flash.html", {"level": "ok", "message": message}, user=user)
    context = await _context(request) | {"cleared": message}
    return page(request, "admin.html", context, user=user)
