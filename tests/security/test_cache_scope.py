"""The response cache is no oracle between users: ``cached: true`` only for your own prompt.

Alice sends a deterministic prompt; Bob sends the very same one. If Bob got ``cached: true``
(and Alice's completion), he would learn that someone asked exactly that. The embedded model
answers for real, with few tokens.
"""

from __future__ import annotations

import pytest

from tests.security.conftest import Api

pytestmark = pytest.mark.slow
TEXT = "/api/v1/generate/text"
INVOKE = "/api/v1/models/smollm2-135m/invoke"
BODY = {"prompt": "Alice's private question about her diagnosis.", "max_tokens": 3, "seed": 11}


@pytest.mark.parametrize("path", [TEXT, INVOKE])
def test_one_users_cached_answer_is_not_anothers(sqlite_api: Api, path: str) -> None:
    body = {**BODY, "prompt": f"{BODY['prompt']} ({path})"}
    alice = sqlite_api.headers("alice")
    first = sqlite_api.client.post(path, json=body, headers=alice)
    assert first.status_code == 200, first.text
    assert first.json()["cached"] is False
    assert sqlite_api.client.post(path, json=body, headers=alice).json()["cached"] is True

    bob = sqlite_api.client.post(path, json=body, headers=sqlite_api.headers("bob"))
    assert bob.status_code == 200, bob.text
    assert bob.json()["cached"] is False
    # Bob's own repeat is his cache entry now; Alice's is still hers.
    assert sqlite_api.client.post(path, json=body, headers=sqlite_api.headers("bob")).json()[
        "cached"
    ]
    assert sqlite_api.client.post(path, json=body, headers=alice).json()["cached"] is True
