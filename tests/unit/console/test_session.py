"""``safe_next``: the console sends a browser back to a console page of this site only."""

from __future__ import annotations

import pytest

from textnlp.api.console.session import CONSOLE_PATH, safe_next


@pytest.mark.parametrize(
    "target",
    [
        "/console",
        "/console/",
        "/console/jobs",
        "/console/jobs/0123abcd?page=2&label=a",
        "/console/catalog/qa-pairs",
    ],
)
def test_console_pages_are_kept(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        "",
        "https://evil.example",
        "https://evil.example/console/jobs",
        "//evil.example/console",
        "/console//evil.example",
        "/console/..//evil.example",
        "/\\evil.example/console",
        "/console\\@evil.example",
        "/consolex",
        "/console-evil",
        "/api/v1/auth/logout",
        "/docs",
        "javascript:alert(1)",
        "/console/jobs\r\nSet-Cookie: x=1",
        "/console/\x00",
        "/console/\tjobs",
        " /console",
        "console/jobs",
        "/console/../api/v1/models/list",
        "/console/%2e%2e/api/v1/models/list",
        "/console/./../docs",
        "/console/jobs/..",
    ],
)
def test_anything_else_goes_to_the_console_home(target: str) -> None:
    assert safe_next(target) == CONSOLE_PATH
