"""Which extra installs a module, read from textnlp's own installed metadata."""

from __future__ import annotations

import sys
from importlib import metadata

import pytest

from textnlp.errors import MissingExtra
from textnlp.extras import extra_providing, missing_extra, require_extra, require_modules


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


def test_require_extra_checks_each_package_of_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    require_extra("api", "serve")  # this venv has every extra
    real = metadata.requires("textnlp") or []
    absent = 'no-such-package>=1.0; extra == "api"'
    monkeypatch.setattr(metadata, "requires", lambda dist: [*real, absent])
    with pytest.raises(MissingExtra) as refused:
        require_extra("api", "users create")
    assert refused.value.details == {"module": "no_such_package", "extra": "api"}
    assert refused.value.message == (
        "users create needs the 'api' extra, which is not installed here "
        "('no_such_package' is missing): pip install 'textnlp[api]'"
    )
    require_extra("validation", "--validate")  # another extra's packages are not asked for


def test_require_modules_imports_nothing_and_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "langdetect", raising=False)
    require_modules("the filter 'lang'", "langdetect")
    assert "langdetect" not in sys.modules  # found, not imported
    monkeypatch.setitem(sys.modules, "datasketch", None)
    with pytest.raises(MissingExtra, match="the filter 'dup' needs the 'validation' extra"):
        require_modules("the filter 'dup'", "datasketch")
