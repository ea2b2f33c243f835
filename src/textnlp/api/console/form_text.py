"""Console forms take text as the API's bodies do (``TextBoundary``): a field, or an uploaded
file's name, holding NUL or a lone surrogate answers 422 naming the field before any page uses
it. Without it SQLite would store a NUL (a key's name, an idempotency key) that PostgreSQL
refuses, and the two profiles would disagree."""

from __future__ import annotations

from fastapi import Request

from textnlp.errors import InvalidInput
from textnlp.services.text_boundary import printable, text_problem

_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})


async def check_form_text(request: Request) -> None:
    """The dependency of every console route (a read-only request has no form to check)."""
    if request.method in _READ_ONLY:
        return
    form = await request.form()
    for name, value in form.multi_items():
        text = value if isinstance(value, str) else value.filename or ""
        problem = text_problem(name) or text_problem(text)
        if problem:
            field = printable(name).replace("\x00", "\\x00")
            raise InvalidInput(f"{field}: {problem}")
