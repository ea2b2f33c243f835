"""The health report's local storage check: a storage root not made yet (it is made on first
use) is healthy where it can be made; one that cannot be is not."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from textnlp.api.health import HealthChecker
from textnlp.config import load_settings


def storage_check(home: Path) -> tuple[str, str | None]:
    settings = load_settings(environ={}, home=home)
    platform = SimpleNamespace(settings=settings, database_probe=None, redis=None, generation=None)
    health = HealthChecker(platform)  # type: ignore[arg-type]
    check = health._storage()
    return check.status, check.detail


def test_a_home_not_made_yet_is_healthy_storage(tmp_path: Path) -> None:
    """A fresh TEXTNLP_HOME was reported "not writable" (degraded) until the first job made it."""
    assert storage_check(tmp_path / "new" / "home")[0] == "ok"


def test_a_home_that_cannot_be_made_is_down(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"  # a file where a folder of the home would be
    blocked.write_text("x")
    status, detail = storage_check(blocked / "home")
    assert status == "down" and detail == f"{blocked} is not writable"
