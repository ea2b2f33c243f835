"""A catalogue id with a ``/`` (``org/model``, as Hugging Face names models) is served by the
model routes, through the Python client as it sends it (escaped): it was listed, and then
answered a bare 404 ``Not Found`` by both routes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.api import Api, start_api_with_models
from textnlp.client import ApiError, TextNLPClient

MODELS = """
models:
  - id: org/fast
    backend: fake-slow
    context_length: 4096
    options: {delay_s: 0.001}
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from start_api_with_models(tmp_path_factory.mktemp("model-ids"), MODELS)


@pytest.fixture
def client(api: Api) -> Iterator[TextNLPClient]:
    with api.python_client("alice") as client:
        yield client


def test_a_model_id_with_a_slash_is_described_and_invoked(client: TextNLPClient) -> None:
    assert "org/fast" in [model.id for model in client.list_models()]
    assert client.get_model("org/fast").id == "org/fast"
    answer = client.invoke("org/fast", prompt="Say hi", max_tokens=4)
    assert answer.model == "org/fast" and answer.choices[0].text
    with pytest.raises(ApiError) as unknown:
        client.get_model("org/nope")
    assert unknown.value.status == 404 and unknown.value.type == "model_not_found"
