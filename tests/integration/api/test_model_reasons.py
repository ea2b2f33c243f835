"""Why a model is unavailable is for administrators, as in the health report.

The reason names the deployment's files (a GGUF's path) and a failed call's error (a circuit's
last error); it was shown to every user by ``/api/v1/models`` and in every route's
``model_unavailable`` error (native, OpenAI-compatible).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.api import Api, make_settings, start_api

PRIVATE_PATH = "/srv/models/acme-private/finetune-q4.gguf"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    models = tmp_path / "models.yaml"
    models.write_text(f"""
models:
  - {{id: private-gguf, backend: llamacpp, path: {PRIVATE_PATH}, context_length: 2048}}
  - id: remote-chat
    backend: openai
    endpoint: http://127.0.0.1:{free_port()}/v1
    context_length: 4096
    options: {{flavour: openai, api: chat}}
""")
    yield from start_api(make_settings(tmp_path, models_file=models))


def test_a_models_reason_is_shown_to_administrators_only(api: Api) -> None:
    alice, admin = api.headers("alice"), api.headers("admin")
    for _ in range(6):  # a server that refuses connections: the circuit opens
        api.client.post(
            "/api/v1/models/remote-chat/invoke",
            json={"prompt": "hi", "max_tokens": 2},
            headers=alice,
        )
    listed = api.client.get("/api/v1/models/list", headers=admin).json()["data"]
    seen = {m["id"]: m for m in listed}
    assert PRIVATE_PATH in seen["private-gguf"]["reason"]
    assert "APIConnectionError" in seen["remote-chat"]["reason"]
    assert PRIVATE_PATH in api.client.get("/api/v1/models/private-gguf", headers=admin).text

    listed = api.client.get("/api/v1/models/list", headers=alice).json()["data"]
    seen = {m["id"]: m for m in listed}
    for model in ("private-gguf", "remote-chat"):
        assert seen[model]["available"] is False
        assert seen[model]["reason"] == "unavailable here now (an administrator can see why)"
        one = api.client.get(f"/api/v1/models/{model}", headers=alice).json()
        assert one["reason"] == seen[model]["reason"]
    answers = [
        api.client.post("/api/v1/models/private-gguf/invoke", json={"prompt": "hi"}, headers=alice),
        api.client.post(
            "/api/v1/generate/text", json={"prompt": "hi", "model": "private-gguf"}, headers=alice
        ),
        api.client.post(
            "/v1/chat/completions",
            json={"model": "private-gguf", "messages": [{"role": "user", "content": "hi"}]},
            headers=alice,
        ),
    ]
    for answer in answers:
        assert answer.status_code in {400, 422}, answer.text
        assert answer.json()["error"]["message"] == (
            "model private-gguf is not available here (an administrator can see why)"
        )
        assert "acme-private" not in answer.text
