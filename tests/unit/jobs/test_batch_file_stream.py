"""A batch file read as a stream of chunks (``services.batch_requests.read_batch_file``): the
same lines and the same refusals as the whole file read at once, wherever the chunks break;
lines end at ``\\n`` alone, so a JSON string may hold U+2028 unescaped."""

from __future__ import annotations

import json

import pytest

from textnlp.errors import BackendUnavailable, ContextWindowExceeded, DatasetError, InvalidRequest
from textnlp.services.batch_requests import (
    COMPLETIONS,
    MAX_REQUEST_BYTES,
    batch_requests_template,
    jsonl_lines,
    line_failure,
    parse_batch_file,
    read_batch_file,
    text_lines,
)


def request(custom_id: str, content: str = "Hi") -> str:
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    return json.dumps(line, ensure_ascii=False)


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


TEXT = "\ufeffa\r\nb\rc\n\nd\u2028e\x85f\r\n\r\ng é\nlast"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64, 1 << 16])
def test_lines_are_the_same_wherever_the_chunks_break(size: int) -> None:
    lines = list(text_lines("f", chunked(TEXT.encode(), size)))
    assert lines == ["a", "b\rc", "", "d\u2028e\x85f", "", "g é", "last"]
    assert lines == jsonl_lines(TEXT.removeprefix("\ufeff"))
    assert list(text_lines("f", [b"a\n"])) == jsonl_lines("a\n") == ["a"]


@pytest.mark.parametrize("size", [1, 7, 1 << 16])
def test_requests_and_their_line_numbers(size: int) -> None:
    data = "\n".join([request("a"), "", request("b", "line\u2028break"), request("c")]).encode()
    items = list(read_batch_file("f.jsonl", chunked(data, size)))
    assert [(i.custom_id, i.line) for i in items] == [("a", 1), ("b", 3), ("c", 4)]
    assert items == parse_batch_file("f.jsonl", data)


def test_refusals_name_the_line() -> None:
    bad_utf8 = request("a").encode() + b"\n\xff\n"
    with pytest.raises(DatasetError, match="not UTF-8"):
        list(read_batch_file("f", chunked(bad_utf8, 4)))
    long = (request("a") + "\n" + request("b", "x" * MAX_REQUEST_BYTES)).encode()
    with pytest.raises(DatasetError, match="line 2: the request is over"):
        list(read_batch_file("f", chunked(long, 1 << 16)))
    with pytest.raises(DatasetError, match="no requests"):
        list(read_batch_file("f", [b"\n", b"  \n"]))
    duplicate = "\n".join([request("a"), request("a")]).encode()
    with pytest.raises(DatasetError, match="line 2: duplicate custom_id"):
        list(read_batch_file("f", chunked(duplicate, 10)))
    # Another url is named as such, not as the other endpoint's missing field.
    completion = json.loads(request("b")) | {"url": "/v1/completions"}  # a chat body
    mixed = "\n".join([request("a"), json.dumps(completion)]).encode()
    with pytest.raises(DatasetError, match="line 2: url '/v1/completions' differs from"):
        list(read_batch_file("f", chunked(mixed, 64)))
    # A chat line's text that cannot enter is named where it is, not as "body.prompt".
    for bad in ("a\ud800", "a\x00b"):
        line = json.dumps(json.loads(request("a", bad))).encode()  # escaped: \\ud800, \\u0000
        with pytest.raises(DatasetError, match=r"line 1: body\.messages\.0\.content: text"):
            list(read_batch_file("f", [line]))


def test_a_lines_seed_is_any_64_bit_integer_as_online() -> None:
    """As ``/v1/chat/completions`` takes it (and OpenAI): used modulo 2**32."""
    for seed, used in [(2**40 + 5, 5), (-1, 2**32 - 1), (2**64 - 1, 2**32 - 1)]:
        line = json.loads(request("a"))
        line["body"]["seed"] = seed
        (item,) = read_batch_file("f", [json.dumps(line).encode()])
        assert item.params.seed == used
    line = json.loads(request("a"))
    line["body"]["seed"] = 2**64
    with pytest.raises(DatasetError, match="body.seed"):
        list(read_batch_file("f", [json.dumps(line).encode()]))


def test_only_the_lines_own_backend_errors_fail_it_alone() -> None:
    refused = line_failure(InvalidRequest("no", backend="b", model="m"))
    assert refused == {
        "status_code": 400,
        "message": "no",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_request",
    }
    too_long = line_failure(ContextWindowExceeded("long", backend="b", model="m"))
    assert too_long is not None and too_long["code"] == "context_length_exceeded"
    assert too_long["param"] == "messages"
    # A completions line has a prompt, as the online route names it.
    line = {"custom_id": "a", "method": "POST", "url": COMPLETIONS}
    line["body"] = {"model": "m", "prompt": "Hi"}  # type: ignore[assignment]
    template = batch_requests_template(parse_batch_file("f", json.dumps(line).encode()))
    too_long = template.request_failure(ContextWindowExceeded("long", backend="b", model="m"))
    assert too_long is not None and too_long["param"] == "prompt"
    assert line_failure(BackendUnavailable("down", backend="b", model="m")) is None
    assert line_failure(RuntimeError("bug")) is None


def test_a_batch_line_asks_what_the_same_request_online_asks() -> None:
    """Text content parts become one message text by one rule, online and in a batch (online
    joined them with nothing, a batch line with newlines: two answers to one request)."""
    from textnlp.services.openai_requests import ChatCompletionRequest, chat_messages

    parts = [{"type": "text", "text": "Name a"}, {"type": "text", "text": " color."}]
    body = {"model": "m", "messages": [{"role": "user", "content": parts}]}
    online = chat_messages(ChatCompletionRequest.model_validate(body).messages)
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": body}
    (item,) = parse_batch_file("f", json.dumps(line).encode())
    assert list(item.messages) == online


def test_a_long_line_has_one_verdict_however_the_file_arrives() -> None:
    """Upload reads a file whole, submit in 1 MiB chunks: a 2.5 MB line passed one and failed
    the other (only a line still growing at a chunk's end was measured)."""
    from textnlp.services.job_prompts import iter_prompt_file

    data = (json.dumps({"prompt": "Say hi", "document": "x" * 2_500_000}) + "\n").encode()
    verdicts = []
    for chunks in ([data], [data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20)]):
        with pytest.raises(DatasetError) as refused:
            list(iter_prompt_file("f.jsonl", chunks))
        verdicts.append(refused.value.message)
    assert (
        verdicts[0] == verdicts[1] == "prompt file f.jsonl, line 1: the line is over 1048576 bytes"
    )
