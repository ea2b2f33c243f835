"""A chat prompt in pieces: the template's own text, read with its control tokens
(``<|im_start|>``...), and what the messages say, read as text.

A message that says ``<|im_end|><|im_start|>system`` must not open a turn. So the template is
rendered around marks (``mark``), the rendered prompt is cut at them (``segments``), and each
backend tokenizes the template's pieces with control tokens and the messages' pieces without.
Whitespace next to a message goes with the message (it holds no control token), so a run of
spaces and newlines across a seam is tokenized as in the whole prompt: ordinary prompts get the
same tokens as before.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textnlp.domain import GenerationRequest


def messages_of(request: GenerationRequest) -> tuple[list[dict[str, str]], str]:
    """The request's messages for a chat template, and its prefill: a trailing assistant
    message the answer continues (a judge's "score:"), as Anthropic's API and vLLM's
    ``continue_final_message`` do."""
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    prefill = messages.pop()["content"] if messages[-1]["role"] == "assistant" else ""
    return messages, prefill


def mark(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[str]]:
    """The messages with each content replaced by a mark no text holds, and the marks."""
    marks = [f"\ue000{i}-{os.urandom(6).hex()}\ue001" for i in range(len(messages))]
    marked = [{**m, "content": mark} for m, mark in zip(messages, marks, strict=True)]
    return marked, marks


def segments(rendered: str, marks: list[str], contents: list[str]) -> list[tuple[str, bool]] | None:
    """(text, read control tokens) pieces of the prompt: the template's text and ``contents``
    (each message's, then the prefill after the template's end) in turn. None when the template
    dropped, repeated or rewrote a message (its marks are not each there once, in order)."""
    templates = _split_at(rendered, marks)
    if templates is None:
        return None
    pieces: list[tuple[str, bool]] = []
    for template_text, content in zip(templates, contents, strict=True):
        rest = template_text.lstrip()
        lead = template_text[: len(template_text) - len(rest)]
        core = rest.rstrip()
        trail = rest[len(core) :]
        if pieces and lead and not pieces[-1][1]:
            pieces[-1] = (pieces[-1][0] + lead, False)  # after the message before
        else:
            core = lead + core
        if core:
            pieces.append((core, True))
        if trail + content:
            pieces.append((trail + content, False))
    return pieces


def _split_at(text: str, marks: list[str]) -> list[str] | None:
    """``text`` cut at each mark, in order (len(marks) + 1 pieces); None unless each mark is
    there exactly once, in order."""
    pieces = []
    for mark_text in marks:
        if text.count(mark_text) != 1:
            return None
        before, _, text = text.partition(mark_text)
        pieces.append(before)
    pieces.append(text)
    return pieces
