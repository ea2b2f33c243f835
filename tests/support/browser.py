"""The browser of the console's tests: Debian's ``chromium`` package, driven by Playwright.

Playwright launches that binary (``executable_path``); it never downloads a browser (no
``playwright install``). When the binary is missing and this process is root (as in CI), the
setup installs it with ``apt-get install -y chromium``; otherwise the browser tests skip with
the reason, except in CI (``CI=true``), where they fail (``tests.conftest.require``).

axe-core, vendored under ``vendor/axe-core`` (see its README), is injected into a page with
``page.evaluate`` (a page's Content-Security-Policy does not apply to what the driver
evaluates) to check the page's accessibility.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.conftest import require

if TYPE_CHECKING:
    from playwright.sync_api import Page

#: Where Debian's package puts it; ``TEXTNLP_TEST_CHROMIUM`` names another binary.
CHROMIUM = "/usr/bin/chromium"
VENDOR = Path(__file__).parent / "vendor" / "axe-core"
#: Impacts that fail a page (axe's scale: minor, moderate, serious, critical).
FAILING_IMPACTS = frozenset({"serious", "critical"})


def _apt_install() -> str:
    """``apt-get install -y chromium`` (after ``apt-get update`` when the lists lack it); the
    installer's last words when it failed, else ""."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    installed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if installed.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
        installed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    return "" if installed.returncode == 0 else installed.stderr.strip()[-500:]


@cache
def _find_or_install() -> tuple[str | None, str]:
    """(the binary, or None; why not)."""
    wanted = os.environ.get("TEXTNLP_TEST_CHROMIUM")
    if wanted:
        return (wanted, "") if os.access(wanted, os.X_OK) else (None, f"{wanted} is missing")
    found = shutil.which("chromium") or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if found:
        return found, ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, "chromium is not installed (as root: apt-get install -y chromium)"
    problem = _apt_install()
    found = shutil.which("chromium")
    return found, "" if found else f"apt-get install -y chromium failed: {problem}"


def chromium_executable() -> str:
    """Debian's chromium (installed first when missing and root); skip or, in CI, fail."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "playwright is not installed (the dev extra)")
    found, why = _find_or_install()
    require(found is not None, why)
    assert found is not None
    return found


def axe_script() -> Path:
    """The vendored ``axe-<version>.min.js`` (one version at a time)."""
    scripts = sorted(VENDOR.glob("axe-*.min.js"))
    assert len(scripts) == 1, f"expected one axe-*.min.js in {VENDOR}, found {scripts}"
    return scripts[0]


@cache
def _axe_source() -> str:
    return axe_script().read_text(encoding="utf-8")


_RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
  }));
}"""


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on ``page`` as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    violations: list[dict[str, Any]] = page.evaluate(_RUN_AXE)
    return [v for v in violations if v["impact"] in FAILING_IMPACTS]
