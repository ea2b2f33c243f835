"""``TextBoundary``: invalid Unicode anywhere in a request is one 422 naming where it is."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from textnlp.api.schemas import GenerateTextRequest, InvokeRequest, QualityRequest
from textnlp.domain.generation import GenerationParams
from textnlp.services.text_boundary import invalid_text_at, printable, valid_unicode


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"prompt": "\ud800"}, ("prompt",)),
        ({"stop": ["ok", "x\udc00"]}, ("stop", 1)),
        ({"variables": {"\ud800": 1}}, ("variables", "\\ud800")),
        ({"a": [{"b": {"c": "\udfff"}}]}, ("a", 0, "b", "c")),
        ({"fine": "é 😀 中文", "n": 1}, None),
    ],
)
def test_invalid_text_is_located(data: Any, where: tuple[Any, ...] | None) -> None:
    found = invalid_text_at(data)
    assert (found and found[0]) == where
    assert found is None or "lone surrogate" in found[1]


def test_deep_data_does_not_recurse() -> None:
    data: Any = "\ud800"
    for _ in range(100_000):
        data = [data]
    located = invalid_text_at(data)
    assert located is not None and len(located[0]) == 100_000


def test_helpers() -> None:
    assert valid_unicode("plain") and valid_unicode("é😀") and not valid_unicode("a\ud800")
    assert printable("a\ud800") == "a\\ud800"


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (GenerateTextRequest, {"prompt": "\ud800"}, "prompt"),
        (GenerateTextRequest, {"prompt": "hi", "system": "\ud800"}, "system"),
        (InvokeRequest, {"messages": [{"role": "user", "content": "\ud800"}]}, "messages"),
        (QualityRequest, {"texts": ["x"], "json_schema": {"\ud800": 1}}, "json_schema"),
    ],
)
def test_request_models_refuse_it_naming_the_field(
    model: type[Any], data: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    (error,) = caught.value.errors()
    assert error["type"] == "invalid_unicode" and error["loc"][0] == field


def test_template_ids_only() -> None:
    with pytest.raises(ValidationError, match="template"):
        GenerateTextRequest.model_validate({"template": "/etc/x.yaml"})
    assert GenerateTextRequest.model_validate({"template": "qa-pairs"}).template == "qa-pairs"


def test_nul_is_refused_at_any_depth_and_an_empty_stop_is_dropped() -> None:
    with pytest.raises(ValidationError) as caught:
        GenerateTextRequest.model_validate({"template": "qa-pairs", "variables": {"k\x00": "v"}})
    (error,) = caught.value.errors()
    assert error["type"] == "invalid_unicode" and "NUL" in error["msg"]
    assert error["loc"][:1] == ("variables",)
    with pytest.raises(ValidationError, match="NUL"):
        InvokeRequest.model_validate({"messages": [{"role": "user", "content": "a\x00b"}]})
    # an empty stop string would end every answer at its first token
    assert GenerationParams(stop=["", "END"]).stop == ("END",)
    assert GenerationParams(stop="").stop == ()
