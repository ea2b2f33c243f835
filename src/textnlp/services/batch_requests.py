"""OpenAI Batch API input files as a job's prompts (translation only: no storage, no HTTP).

A batch input file is JSONL, one request per line, as OpenAI's Batch API takes it::

    {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": "smollm2-135m", "messages": [{"role": "user", "content": "Hi"}],
              "max_tokens": 20}}

Line ``i`` (blank lines skipped) becomes ``BatchRequestItem`` ``i``: a ``PromptItem`` that also
keeps the request's whole conversation (or raw completions prompt), its own sampling
parameters and its ``custom_id``. ``BatchRequestsTemplate`` runs a list of them: record ``i``
of the job is the answer to line ``i``, sent with that line's messages and parameters over the
job's (the record's ``provenance.params`` are the job's; the line's own are in its request).
A record's variables are ``custom_id``, ``prompt`` (the last user message) and ``system``, so
the custom_id travels with the record into the job's result and the batch's output file.

A line's body is read by the online routes' own contract (``openai_requests``): what the same
request sent to ``/v1`` is refused for is refused here, unknown fields are ignored as there,
and its messages are the same. Refused, naming the line: JSON that does not parse, a line over
``MAX_REQUEST_BYTES``, an unknown endpoint, what the online route refuses, what a batch cannot
do (``n`` above 1, ``stream``, a JSON ``response_format``), a duplicate ``custom_id``, and a
model or url other than the first line's (a batch runs one model on one endpoint).
``/v1/embeddings`` is not a batch endpoint here: a job's records are generated text. A file is
read as a stream of chunks (``read_batch_file``), so a 200 MB upload is checked without being
held in memory; its lines are split at ``\\n`` alone (``jsonl_lines``), as the worker reads
them.

A request the model's backend refuses (``InvalidRequest``, ``ContextWindowExceeded``: the
line's own fault) does not fail the job: ``BatchRequestsTemplate.request_failure`` makes its
record a failed one holding OpenAI's error (``line_failure``), which the batch's error file
shows as that line's 4xx answer. Other errors (an unreachable or rate-limited backend, a bug)
fail the attempt, and the job is retried as any other.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from textnlp import strict_json
from textnlp.domain import GenerationParams, GenerationRequest
from textnlp.domain.generation import ChatMessage
from textnlp.errors import (
    BackendError,
    ContextWindowExceeded,
    DatasetError,
    InvalidParameter,
    first_error,
)
from textnlp.generation.templates import PromptTemplate
from textnlp.services.job_models import JobParams, PromptItem
from textnlp.services.openai_requests import (
    ChatCompletionRequest,
    CompletionRequest,
    SamplingRequest,
    chat_messages,
    refuse_unsupported,
)
from textnlp.services.text_boundary import invalid_text_at

CHAT_COMPLETIONS = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
ENDPOINTS = (CHAT_COMPLETIONS, COMPLETIONS)
#: The largest request line (its JSON, in bytes) of a batch file.
MAX_REQUEST_BYTES = 1 << 20
BATCH_TEMPLATE_ID = "openai-batch"
_UNSUPPORTED = "not supported in a TextNLP batch"


class RequestParams(JobParams):
    """A request line's own sampling parameters (over the job's)."""

    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)


class BatchRequestItem(PromptItem):
    """One request line: ``prompt`` is its last user message (or its completions prompt)."""

    custom_id: str
    url: str
    model: str
    #: The file's line number (1-based), for messages about it.
    line: int
    #: The conversation of a chat request; empty: ``prompt`` is raw text (completions).
    messages: tuple[ChatMessage, ...] = ()
    params: RequestParams = RequestParams()


def _params(body: SamplingRequest, max_tokens: int | None) -> RequestParams:
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    return RequestParams(
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=stop,
        seed=body.seed % 2**32 if body.seed is not None else None,
    )


def _refuse_in_a_batch(body: SamplingRequest) -> None:
    """What a request may ask online and not in a batch: one answer per line, whole, as text."""
    if body.n not in (None, 1):
        raise ValueError(f"body.n: one answer per request line (n {body.n} is {_UNSUPPORTED})")
    if body.stream:
        raise ValueError(f"body.stream: streaming is {_UNSUPPORTED}")
    if isinstance(body, ChatCompletionRequest):
        kind = body.response_format.type if body.response_format is not None else "text"
        if kind != "text":
            raise ValueError(f"body.response_format: {kind!r} is {_UNSUPPORTED}")
    prompts = body.prompt if isinstance(body, CompletionRequest) else ""
    if isinstance(prompts, list) and len(prompts) != 1:
        raise ValueError(f"body.prompt: one prompt per request line (got {len(prompts)})")


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid")

    custom_id: str = Field(min_length=1, max_length=512)
    method: Literal["POST"]
    url: str
    body: dict[str, Any]


def is_batch_request(raw: Any) -> bool:
    """Whether a JSONL line is an OpenAI batch request (rather than a prompt)."""
    return isinstance(raw, dict) and "custom_id" in raw and "prompt" not in raw


def batch_requests(name: str, rows: Iterable[tuple[int, str, Any]]) -> list[BatchRequestItem]:
    """The requests of a batch file's non-blank lines ``(line number, text, parsed JSON)``."""
    return list(iter_batch_requests(name, rows))


def iter_batch_requests(
    name: str, rows: Iterable[tuple[int, str, Any]]
) -> Iterator[BatchRequestItem]:
    """``batch_requests`` one at a time: only the custom_ids seen are kept."""
    first: BatchRequestItem | None = None
    first_line: dict[str, int] = {}
    for number, text, raw in rows:
        where = f"batch file {name}, line {number}"
        if len(text.encode()) > MAX_REQUEST_BYTES:
            raise DatasetError(f"{where}: the request is over {MAX_REQUEST_BYTES} bytes")
        if first is not None and isinstance(raw, dict) and raw.get("url") != first.url:
            # Before the body is read as the other endpoint's ("body.prompt: Field required").
            _differs(where, "url", raw.get("url"), first)
        item = _request(where, number, raw)
        if item.custom_id in first_line:
            raise DatasetError(
                f"{where}: duplicate custom_id {item.custom_id!r} "
                f"(first on line {first_line[item.custom_id]})"
            )
        first_line[item.custom_id] = number
        first = first or item
        if item.model != first.model:
            _differs(where, "model", item.model, first)
        yield item


def _differs(where: str, what: str, mine: Any, first: BatchRequestItem) -> NoReturn:
    theirs = getattr(first, what)
    raise DatasetError(
        f"{where}: {what} {mine!r} differs from {theirs!r} of line {first.line}; "
        f"every request of a batch names the same {what}"
    )


def _request(where: str, number: int, raw: Any) -> BatchRequestItem:
    if not isinstance(raw, dict):
        raise DatasetError(f"{where}: expected an object with custom_id, method, url and body")
    try:
        line = _Line.model_validate(raw)
    except ValidationError as exc:
        raise DatasetError(f"{where}: {first_error(exc, extra='unknown field')}") from None
    if line.url not in ENDPOINTS:
        supported = ", ".join(ENDPOINTS)
        raise DatasetError(f"{where}: url {line.url!r} is {_UNSUPPORTED} (supported: {supported})")
    invalid = invalid_text_at(line.body)  # named where it is (a message), not as the prompt
    if invalid is not None:
        at, problem = invalid
        raise DatasetError(f"{where}: body.{'.'.join(map(str, at))}: {problem}")
    # The online routes' own contract (``openai_requests``): a line is read, refused and
    # turned into messages as the same request sent to /v1 is.
    try:
        if line.url == CHAT_COMPLETIONS:
            chat = ChatCompletionRequest.model_validate(line.body)
            refuse_unsupported(chat)
            _refuse_in_a_batch(chat)
            return _chat_item(line, number, chat)
        completion = CompletionRequest.model_validate(line.body)
        refuse_unsupported(completion)
        _refuse_in_a_batch(completion)
        return _completion_item(line, number, completion)
    except ValidationError as exc:
        raise DatasetError(f"{where}: body.{first_error(exc)}") from None
    except InvalidParameter as exc:  # named as the field it is about ("messages.0: ...")
        field = str(exc.details.get("parameter") or "")
        named = not field or exc.message.startswith(field.split(".")[0])
        said = exc.message if named else f"{field}: {exc.message}"
        raise DatasetError(f"{where}: body.{said}") from None
    except ValueError as exc:
        raise DatasetError(f"{where}: {exc}") from None


def _chat_item(line: _Line, number: int, body: ChatCompletionRequest) -> BatchRequestItem:
    messages = tuple(chat_messages(body.messages))
    # The record's ``prompt`` variable: its last user message (else its last message; a
    # conversation of a system message alone is answered online too).
    users = [m.content for m in messages if m.role == "user"]
    prompt = users[-1] if users else messages[-1].content
    if not prompt.strip():
        raise ValueError("body.messages: the last user message has no text")
    system = next((m.content for m in messages if m.role == "system"), None)
    return BatchRequestItem(
        prompt=prompt,
        system=system or None,
        custom_id=line.custom_id,
        url=line.url,
        model=body.model,
        line=number,
        messages=messages,
        params=_params(body, body.max_completion_tokens or body.max_tokens),
    )


def _completion_item(line: _Line, number: int, body: CompletionRequest) -> BatchRequestItem:
    prompt = body.prompt if isinstance(body.prompt, str) else body.prompt[0]
    if not prompt.strip():
        raise ValueError("body.prompt: must not be empty")
    return BatchRequestItem(
        prompt=prompt,
        custom_id=line.custom_id,
        url=line.url,
        model=body.model,
        line=number,
        params=_params(body, body.max_tokens),
    )


class BatchRequestsTemplate(PromptTemplate):
    """A template whose record ``i`` is request ``i``, with its messages and parameters."""

    requests: list[BatchRequestItem] = []
    _by_id: dict[str, BatchRequestItem] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._by_id = {item.custom_id: item for item in self.requests}

    def sample_variables(
        self, seed: int, index: int, overrides: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        item = self.requests[index]
        return {"custom_id": item.custom_id, "prompt": item.prompt, "system": item.system or ""}

    def request(
        self, variables: dict[str, Any], params: Any, *, ignore_eos: bool = False
    ) -> GenerationRequest:
        """The line's own request: its messages (or raw prompt), its parameters over ``params``
        (the job's, with the record's seed)."""
        item = self._by_id[variables["custom_id"]]
        merged = GenerationParams.model_validate(
            {**GenerationParams.model_validate(params).model_dump(), **item.params.given()}
        )
        if item.messages:
            return GenerationRequest(messages=item.messages, params=merged, ignore_eos=ignore_eos)
        return GenerationRequest(prompt=item.prompt, params=merged, ignore_eos=ignore_eos)

    def request_failure(self, exc: Exception) -> dict[str, Any] | None:
        """A line the backend refuses is that line's failure, not the batch's."""
        return line_failure(exc, self.requests[0].url if self.requests else CHAT_COMPLETIONS)


def line_failure(exc: Exception, url: str = CHAT_COMPLETIONS) -> dict[str, Any] | None:
    """A backend's refusal of one request to ``url``, as OpenAI answers it in a batch's error
    file: ``status_code`` and the error object (``message``, ``type``, ``param``, ``code``).
    None when the error is not the request's own (the attempt fails instead)."""
    if not isinstance(exc, BackendError) or not exc.user_error:
        return None
    param, code = None, exc.type
    if isinstance(exc, ContextWindowExceeded):  # a completions request has a prompt
        param = "prompt" if url == COMPLETIONS else "messages"
        code = "context_length_exceeded"
    return {
        "status_code": exc.http_status,
        "message": exc.message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }


def batch_requests_template(items: list[BatchRequestItem]) -> BatchRequestsTemplate:
    return BatchRequestsTemplate(
        id=BATCH_TEMPLATE_ID,
        version="1",
        description="requests of an OpenAI batch file",
        system="{{ system }}",
        user="{{ prompt }}",
        requests=items,
    )


def parse_batch_file(name: str, data: bytes) -> list[BatchRequestItem]:
    """The requests of a batch input file (every non-blank line one); ``DatasetError`` naming
    the first bad line, or saying the file is empty."""
    return list(read_batch_file(name, [data]))


def read_batch_file(name: str, chunks: Iterable[bytes]) -> Iterator[BatchRequestItem]:
    """``parse_batch_file`` of a file given in chunks, one request at a time: memory holds a
    line, not the file."""
    rows = (
        (number, line, parse_line_json(name, number, line, kind="batch"))
        for number, line in enumerate(text_lines(name, chunks), 1)
        if line.strip()
    )
    empty = True
    for item in iter_batch_requests(name, rows):
        empty = False
        yield item
    if empty:
        raise DatasetError(f"batch file {name} has no requests")


def text_lines(
    name: str, chunks: Iterable[bytes], *, kind: str = "batch", keep_ends: bool = False
) -> Iterator[str]:
    """The lines of UTF-8 JSONL text given in chunks, as ``jsonl_lines`` splits the whole text
    (a leading BOM dropped); a line over ``MAX_REQUEST_BYTES`` is refused as it grows. With
    ``keep_ends`` each line keeps its ``\n`` (what ``csv`` reads a quoted newline from)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    number = 0
    for chunk in _then_none(chunks):
        try:
            pending += decoder.decode(chunk or b"", final=chunk is None)
        except UnicodeDecodeError:
            raise DatasetError(f"{kind} file {name} is not UTF-8 text") from None
        *lines, pending = pending.split("\n")
        for line in lines:
            number += 1
            _bounded(line, kind, name, number)
            yield line + "\n" if keep_ends else line.removesuffix("\r")
        _bounded(pending, kind, name, number + 1)  # as it grows, not once it is whole
    if pending:
        yield pending if keep_ends else pending.removesuffix("\r")


def _bounded(line: str, kind: str, name: str, number: int) -> None:
    """Every line under ``MAX_REQUEST_BYTES``, finished or growing: the same verdict however
    the file arrives (whole at upload, in chunks at submit)."""
    if len(line) > MAX_REQUEST_BYTES:  # characters: at least as many bytes
        noun = "request" if kind == "batch" else "line"
        where = f"{kind} file {name}, line {number}"
        raise DatasetError(f"{where}: the {noun} is over {MAX_REQUEST_BYTES} bytes")


def jsonl_lines(text: str) -> list[str]:
    """The lines of JSONL text: split at ``\\n`` only (a ``\\r`` before it dropped), as JSON Lines
    are. Not ``str.splitlines``, which also splits at U+2028, U+0085 and others that a JSON
    string may hold unescaped."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _then_none(chunks: Iterable[bytes]) -> Iterator[bytes | None]:
    yield from chunks
    yield None


def parse_line_json(name: str, number: int, text: str, *, kind: str = "prompt") -> Any:
    """One JSONL line, or ``DatasetError`` naming it."""
    try:
        # NaN and 1e999 are refused later, naming their field; an integer too long to
        # convert, here.
        return json.loads(text, parse_int=strict_json.bounded_int)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{kind} file {name}, line {number}: {exc.msg}") from None
    except ValueError as exc:
        raise DatasetError(f"{kind} file {name}, line {number}: {exc}") from None
    except RecursionError:
        raise DatasetError(f"{kind} file {name}, line {number}: nested too deeply") from None
