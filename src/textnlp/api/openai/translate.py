"""OpenAI's requests to ``GenerationRequest``s, and ``CompletionsServing``'s answers back.

Requests go through the native serving's own builders (``InvokeRequest`` ->
``CompletionsServing.invoke_requests``), so the bounds (``api.max_tokens``, ``api.max_n``,
``api.max_prompt_chars``), a choice's seed (``seed``, ``seed + 1``...) and the checks are the
native routes'. Omitted sampling fields take the model's catalogue defaults (OpenAI's own
defaults, temperature 1 and ``max_tokens`` 16 or "the rest of the context", suit no model of
the catalogue). A seed is taken modulo 2**32, the engines' width.

The requests and their messages are read by ``services.openai_requests`` (a batch file's lines
too). A trailing ``assistant`` message is continued (a prefill) by the backends that can
(llama.cpp, transformers), as Anthropic's API does. ``/v1/completions`` prompts are raw text:
no chat template, as OpenAI's legacy completions are.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from pydantic import ValidationError

from textnlp.api.openai.schemas import (
    ChatChoice,
    ChatCompletion,
    ChatMessageOut,
    TextChoice,
    TextCompletion,
    Usage,
)
from textnlp.api.schemas import CompletionResponse, CompletionUsage, InvokeRequest
from textnlp.api.serving import CompletionsServing
from textnlp.domain import ChatMessage, GenerationRequest
from textnlp.errors import InvalidParameter, first_error
from textnlp.services.openai_requests import (
    ChatCompletionRequest,
    CompletionRequest,
    SamplingRequest,
)


def chat_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def text_id() -> str:
    return "cmpl-" + secrets.token_hex(12)


# Requests -----------------------------------------------------------------------------------
def _sampling(body: SamplingRequest, serve: CompletionsServing, model_id: str) -> dict[str, Any]:
    defaults = serve.service.spec(model_id).params()
    max_tokens = body.max_tokens
    if isinstance(body, ChatCompletionRequest) and body.max_completion_tokens is not None:
        max_tokens = body.max_completion_tokens  # the newer name wins
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    return {
        "max_tokens": max_tokens or defaults.max_tokens,
        "temperature": defaults.temperature if body.temperature is None else body.temperature,
        "top_p": defaults.top_p if body.top_p is None else body.top_p,
        "seed": None if body.seed is None else body.seed % 2**32,
        "stop": stop,
        "n": body.n or 1,
    }


def _invoke(serve: CompletionsServing, **fields: Any) -> list[GenerationRequest]:
    """The native invocation's requests, its validation errors told as a 400 naming the
    field (not a 500: they come from the client's values)."""
    try:
        body = InvokeRequest(**fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or None
        raise InvalidParameter(first_error(exc), parameter=where) from None
    return serve.invoke_requests(body)


def chat_requests(
    serve: CompletionsServing,
    body: ChatCompletionRequest,
    model_id: str,
    messages: list[ChatMessage],
) -> list[GenerationRequest]:
    """One request per choice, for ``messages`` (``body``'s, maybe with an instruction)."""
    try:
        return _invoke(serve, messages=messages, **_sampling(body, serve, model_id))
    except InvalidParameter as exc:
        if exc.details.get("parameter") != "prompt":
            raise
        raise InvalidParameter(exc.message, parameter="messages") from None


def completion_requests(
    serve: CompletionsServing, body: CompletionRequest, model_id: str
) -> list[GenerationRequest]:
    """``n`` requests per prompt, in OpenAI's order (prompt 0's choices, then prompt 1's...);
    raw prompts (no chat template)."""
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    sampling = _sampling(body, serve, model_id)
    if len(prompts) * sampling["n"] > serve.bounds.max_n:
        raise InvalidParameter(
            f"prompts x n must be at most {serve.bounds.max_n}", parameter="prompt"
        )
    requests = []
    for prompt in prompts:
        for choice in _invoke(serve, prompt=prompt, **sampling):
            requests.append(choice.model_copy(update={"messages": (), "prompt": prompt}))
    return requests


# Responses ----------------------------------------------------------------------------------
def usage_of(usage: CompletionUsage) -> Usage:
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def chat_completion(response: CompletionResponse) -> ChatCompletion:
    return ChatCompletion(
        id=chat_id(),
        created=response.created,
        model=response.model,
        choices=[
            ChatChoice(
                index=choice.index,
                message=ChatMessageOut(content=choice.text),
                finish_reason=choice.finish_reason,
            )
            for choice in response.choices
        ],
        usage=usage_of(response.usage),
    )


def text_completion(response: CompletionResponse) -> TextCompletion:
    return TextCompletion(
        id=text_id(),
        created=response.created,
        model=response.model,
        choices=[
            TextChoice(index=c.index, text=c.text, finish_reason=c.finish_reason)
            for c in response.choices
        ],
        usage=usage_of(response.usage),
    )


class ChunkWriter:
    """The ``data`` of one stream's events: ``chat.completion.chunk`` or ``text_completion``
    chunks of one id; with ``include_usage`` every chunk has ``usage: null`` and a last one,
    with no choices, has the usage (OpenAI's ``stream_options``)."""

    def __init__(self, model: str, *, chat: bool, include_usage: bool) -> None:
        self.id = chat_id() if chat else text_id()
        self.created = int(time.time())
        self.model = model
        self.chat = chat
        self.include_usage = include_usage

    def chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def start(self, index: int = 0) -> dict[str, Any] | None:
        """A chat choice's first chunk (the role); text streams have none."""
        if not self.chat:
            return None
        return self._piece(index, {"role": "assistant", "content": ""}, None)

    def text(self, index: int, text: str, finish_reason: str | None = None) -> dict[str, Any]:
        if not self.chat:
            choice = {"index": index, "text": text, "logprobs": None}
            return self.chunk([{**choice, "finish_reason": finish_reason}])
        return self._piece(index, {"content": text} if text else {}, finish_reason)

    def usage(self, usage: CompletionUsage | None) -> dict[str, Any] | None:
        if not self.include_usage or usage is None:
            return None
        return {**self.chunk([]), "usage": usage_of(usage).model_dump()}

    def _piece(
        self, index: int, delta: dict[str, Any], finish_reason: str | None
    ) -> dict[str, Any]:
        return self.chunk(
            [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        )
