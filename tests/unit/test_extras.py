"""Which extra installs a module, read from textnlp's own installed metadata."""

from __future__ import annotations

import pytest

from textnlp.extras import extra_providing, missing_extra


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("sqlalchemy.orm", "api"),
        ("uvicorn", "api"),
        ("jwt", "api"),  # pyjwt
        ("argon2", "api"),  # argon2-cffi
        ("opentelemetry.sdk", "api"),
        ("boto3", "aws"),
        ("textstat", "validation"),
        ("sentence_transformers", "validation"),
        ("torch", "hf"),
        ("llama_cpp", "embedded"),  # llama-cpp-python
        ("requests", None),  # not one of ours
    ],
)
def test_the_extra_of_a_module(module: str, extra: str | None) -> None:
    assert extra_providing(module) == extra


def test_a_missing_package_names_its_extra_and_our_own_module_is_a_bug() -> None:
    missing = missing_extra(ModuleNotFoundError("No module named 'uvicorn'", name="uvicorn"))
    assert missing is not None and missing.http_status == 501 and missing.user_error
    assert missing.details == {"module": "uvicorn", "extra": "api"}
    assert missing.message.endswith("pip install 'textnlp[api]'")
    own = ModuleNotFoundError("No module named 'textnlp.nothing'", name="textnlp.nothing")
    assert missing_extra(own) is None
