"""A whole (non-streaming) answer whose client has gone is not finished: its generation is
cancelled, which frees the model's slots (a stream's generator is closed by sse-starlette;
this is the same for the other answers). Without it an abandoned request generated to its
end (a client timing out at 120 s, then retrying, had the server generate twice).

The client's going is read from the connection (Starlette's ``is_disconnected``, ASGI's
``http.disconnect``) a few times a second while the answer is made.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from textnlp.errors import ClientGone

T = TypeVar("T")

#: How often a request being answered looks whether its client is still there.
POLL_S = 0.25


async def unless_gone(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result; ``ClientGone`` (its work cancelled) when the client leaves first."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise ClientGone("the client closed the connection before the answer")
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
