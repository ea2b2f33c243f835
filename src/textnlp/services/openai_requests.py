"""OpenAI's chat and text completion requests, as TextNLP takes them: one contract for the
online ``/v1`` routes (``api.openai``) and the lines of a batch file (``batch_requests``), so a
request is read, refused and turned into messages the same way wherever it is sent.

**Unknown fields are ignored**, as OpenAI-compatible servers (vLLM, llama.cpp's) do: clients
such as LangChain and LiteLLM send fields that only some servers know (``user``, ``store``,
``metadata``, ``service_tier``, ``parallel_tool_calls``...), and refusing them would break a
client that works unchanged elsewhere. Fields that are known but would change the answer in a
way TextNLP cannot honour (tools, logprobs, logit_bias, penalties, echo, best_of, suffix,
non-text content) are refused by ``refuse_unsupported``: silently ignoring them would return
something else than what was asked. Text must be valid Unicode (``TextBoundary``), as on the
native routes. Strict types, as OpenAI's API: ``"max_tokens": "2"`` is refused, not read as 2.

Chat messages (``chat_messages``): ``developer`` is a system message; content may be a string
or ``text`` parts (one per line, ``ChatMessage.joined``); ``tool``/``function`` messages, tool
calls and other content parts are refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag, field_validator

from textnlp.domain import MAX_TOKENS_LIMIT, ChatMessage
from textnlp.errors import InvalidParameter
from textnlp.services.text_boundary import TextBoundary

#: The most messages of one chat request (the native ``invoke`` route's bound).
MAX_MESSAGES = 64
#: The most prompts of one ``/v1/completions`` request.
MAX_PROMPTS = 16
#: The most texts of one ``/v1/embeddings`` request (OpenAI's own bound).
MAX_EMBEDDING_INPUTS = 2048
MODEL_ID = Field(min_length=1, max_length=200, description="A model id of `GET /v1/models`.")


class _Request(TextBoundary):
    model_config = ConfigDict(extra="ignore", strict=True)


def _text_or_list(value: Any) -> str | None:
    return "text" if isinstance(value, str) else "list" if isinstance(value, list) else None


#: OpenAI's "a string or a list of them" fields, told apart by the value's type: an error then
#: names the member the value is (``messages.0.content.0.text``), not every member tried
#: (``content.str: Input should be a valid string``, then the list's).
_ONE_OR_LIST = Discriminator(
    _text_or_list,
    custom_error_type="string_or_list",
    custom_error_message="Input should be a string or a list",
)
TextOrTexts = Annotated[
    Annotated[str, Tag("text")] | Annotated[list[str], Tag("list")], _ONE_OR_LIST
]
#: The same, neither empty.
SomeText = Annotated[
    Annotated[str, Field(min_length=1), Tag("text")]
    | Annotated[list[str], Field(min_length=1), Tag("list")],
    _ONE_OR_LIST,
]


class StreamOptions(_Request):
    include_usage: bool = False


class TextPart(_Request):
    """A part of a message's content; only ``text`` parts are served."""

    type: str = Field(max_length=64)
    text: str | None = None


TextOrParts = Annotated[
    Annotated[str, Tag("text")] | Annotated[list[TextPart], Tag("list")], _ONE_OR_LIST
]


class ChatMessageIn(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: TextOrParts | None = None
    name: str | None = Field(None, max_length=256)
    tool_calls: list[Any] | None = None
    function_call: Any = None


class JsonSchemaFormat(_Request):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    #: The JSON Schema of the answer (checked as users' schemas are: ``safe_schema``).
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class TextFormat(_Request):
    type: Literal["text"]


class JsonObjectFormat(_Request):
    type: Literal["json_object"]


class JsonSchemaResponseFormat(_Request):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaResponseFormat, Field(discriminator="type")
]


class SamplingRequest(_Request):
    """What chat and text completions share: OpenAI's sampling fields (omitted ones take the
    model's catalogue defaults) and those refused when set."""

    model: str = MODEL_ID
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int | None = Field(None, ge=1, le=16)
    stop: TextOrTexts | None = None
    #: Any 64-bit integer, as OpenAI takes; used modulo 2**32 (the engines' seed width).
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)
    stream: bool | None = False  # null as false, as OpenAI takes it
    stream_options: StreamOptions | None = None
    # Known, refused when they ask for something (translate.refuse_unsupported).
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | int | None = None


class ChatCompletionRequest(SamplingRequest):
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    response_format: ResponseFormat | None = None
    top_logprobs: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    modalities: list[str] | None = None
    audio: Any = None


class CompletionRequest(SamplingRequest):
    prompt: SomeText
    echo: bool | None = None
    best_of: int | None = None
    suffix: str | None = None

    @field_validator("prompt", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        # OpenAI takes token ids too (a list of ints, or of lists); pydantic then named every
        # member of the union it tried ("prompt.str: ... (+3 more)").
        if isinstance(value, list) and value and all(isinstance(v, int | list) for v in value):
            raise ValueError("prompts as token ids are not supported here: send text")
        return value


class EmbeddingRequest(_Request):
    model: str = MODEL_ID
    input: SomeText
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)


def refuse_unsupported(body: SamplingRequest) -> None:
    """400 for a field TextNLP knows but cannot honour (see ``schemas``' docstring)."""
    refused: dict[str, bool] = {
        "presence_penalty": bool(body.presence_penalty),
        "frequency_penalty": bool(body.frequency_penalty),
        "logit_bias": bool(body.logit_bias),
        "logprobs": body.logprobs not in (None, False, 0),
    }
    if isinstance(body, ChatCompletionRequest):
        refused |= {
            "top_logprobs": bool(body.top_logprobs),
            "tools": bool(body.tools),
            # "none" asks for no call, as no tools do; anything else asks for a call.
            "tool_choice": body.tool_choice not in (None, "none"),
            "functions": bool(body.functions),
            "function_call": body.function_call not in (None, "none"),
            "modalities": body.modalities not in (None, ["text"]),
            "audio": body.audio is not None,
        }
    if isinstance(body, CompletionRequest):
        refused |= {
            # An integer asks for that many alternatives beside the sampled token's own
            # logprob, which even 0 asks for (answering null would ignore it unsaid).
            "logprobs": body.logprobs is not None and body.logprobs is not False,
            "echo": bool(body.echo),
            "best_of": body.best_of not in (None, 1),
            "suffix": bool(body.suffix),
        }
    for name, asked in refused.items():
        if asked:
            raise InvalidParameter(f"'{name}' is not supported by this server", parameter=name)


def chat_messages(messages: list[ChatMessageIn]) -> list[ChatMessage]:
    out = []
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if message.role in {"tool", "function"} or message.tool_calls or message.function_call:
            raise InvalidParameter(
                f"{where}: tool and function messages are not supported by this server",
                parameter=f"{where}.role",
            )
        content = message.content
        if isinstance(content, list):
            for part in content:
                if part.type != "text":
                    raise InvalidParameter(
                        f"{where}.content: only 'text' content parts are supported, "
                        f"not {part.type!r}",
                        parameter=f"{where}.content",
                    )
                if part.text is None:
                    raise InvalidParameter(
                        f"{where}.content: a 'text' part needs its 'text'",
                        parameter=f"{where}.content",
                    )
            content = ChatMessage.joined(part.text or "" for part in content)
        if content is None:
            raise InvalidParameter(f"{where}.content is required", parameter=f"{where}.content")
        role = "system" if message.role == "developer" else message.role
        out.append(ChatMessage(role=role, content=content))
    return out
