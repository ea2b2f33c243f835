"""Types and helpers shared by the provider translations."""

from __future__ import annotations

from dataclasses import dataclass

from textnlp.domain import ChatMessage, FinishReason, GenerationParams, GenerationRequest
from textnlp.errors import InvalidRequest


@dataclass(frozen=True)
class Parsed:
    """A provider's complete answer. Token counts are None when the body does not carry them."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class Chunk:
    """One streamed event: a piece of text, and on the last one(s) the finish reason and usage."""

    text: str = ""
    finish_reason: FinishReason | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def finish_reason(raw: str | None, *, length: tuple[str, ...]) -> FinishReason:
    """``length`` when the provider's reason says the token budget ran out, else ``stop``.

    Content filters and guardrails end a completion normally from our side: the text is what
    the provider returned.
    """
    if raw is None:
        return "stop"
    return "length" if raw in length else "stop"


def unit_temperature(params: GenerationParams) -> float:
    """The temperature of a model that takes 0 to 1 (Bedrock's Converse and InvokeModel bodies,
    Anthropic's API): a higher one is refused, never cut to 1 unsaid."""
    if params.temperature > 1.0:
        raise InvalidRequest(f"this model takes a temperature of 0 to 1, not {params.temperature}")
    return params.temperature


def split_system(request: GenerationRequest) -> tuple[str | None, list[ChatMessage]]:
    """The system prompt (messages joined) and the other messages, prompt-only as one user turn."""
    if request.prompt is not None:
        return None, [ChatMessage(role="user", content=request.prompt)]
    system = [m.content for m in request.messages if m.role == "system"]
    rest = [m for m in request.messages if m.role != "system"]
    return ("\n\n".join(system) if system else None), rest


def alternating(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Messages as APIs that require ``user``/``assistant`` alternation starting with ``user``
    want them: consecutive turns of one role are merged; a leading assistant turn gets a short
    user turn before it."""
    merged: list[ChatMessage] = []
    for message in messages:
        if merged and merged[-1].role == message.role:
            previous = merged.pop()
            message = ChatMessage(
                role=message.role, content=f"{previous.content}\n\n{message.content}"
            )
        merged.append(message)
    if merged and merged[0].role != "user":
        merged.insert(0, ChatMessage(role="user", content="Continue."))
    return merged


def fold_system(system: str | None, messages: list[ChatMessage]) -> list[ChatMessage]:
    """For models without system prompts: the system text goes before the first user turn."""
    if not system:
        return messages
    if messages and messages[0].role == "user":
        first = ChatMessage(role="user", content=f"{system}\n\n{messages[0].content}")
        return [first, *messages[1:]]
    return [ChatMessage(role="user", content=system), *messages]


def transcript(
    system: str | None, messages: list[ChatMessage], *, user: str, assistant: str
) -> str:
    """A plain-text chat transcript ending with an open assistant turn (for text-only models)."""
    lines = [system] if system else []
    names = {"user": user, "assistant": assistant}
    lines += [f"{names[m.role]}: {m.content}" for m in messages if m.role in names]
    lines.append(f"{assistant}:")
    return "\n".join(lines)
