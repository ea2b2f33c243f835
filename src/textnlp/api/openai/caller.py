"""``OpenAICaller``: who calls a /v1 route, and the rate-limit headers to answer them with.

Authentication is the native API's (``api.deps.current_user``): ``Authorization: Bearer``
with an access token or an API key (OpenAI clients send their ``api_key`` so), or
``X-API-Key``; it takes the request's token from the caller's bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from textnlp.api.deps import CredentialWatch, CurrentUser, credential_of
from textnlp.api.openai.ratelimit import RequestWindow, limit_of
from textnlp.api.serving import CompletionsServing
from textnlp.auth.service import Principal


@dataclass(frozen=True)
class Caller:
    principal: Principal
    #: ``x-ratelimit-*`` headers of this request.
    headers: dict[str, str]
    #: The credential, checked again while a stream runs (it must not outlive it).
    watch: CredentialWatch

    @property
    def owner(self) -> str:
        """The owner of cache entries and spending: the user."""
        return self.principal.id


def openai_caller(request: Request, user: CurrentUser) -> Caller:
    window: RequestWindow = request.app.state.openai_window
    rate, burst = limit_of(request.app.state.settings, user.username)
    watch = CredentialWatch.of(request, credential_of(request))
    return Caller(user, window.admitted(user.bucket, rate, burst), watch)


def serving(request: Request) -> CompletionsServing:
    value: CompletionsServing = request.app.state.serving
    return value


OpenAICaller = Annotated[Caller, Depends(openai_caller)]
ServingDep = Annotated[CompletionsServing, Depends(serving)]
