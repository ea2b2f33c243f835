"""The vendored front-end files are the ones their READMEs name (version, sha256), and the
pages load exactly those: no file from another origin, no unlisted script."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from textnlp.api.console.render import STATIC, TEMPLATES

REPOSITORY = Path(__file__).resolve().parents[3]
AXE = REPOSITORY / "tests" / "support" / "vendor" / "axe-core"
ROW = re.compile(
    r"^\| `(?P<file>[^`]+)` \|[^|]*\| (?P<version>[^ |]+) \| `(?P<sha>[0-9a-f]{64})` \|"
)


def listed(readme: Path) -> dict[str, tuple[str, str]]:
    """file -> (version, sha256) from a vendor README's table."""
    rows = {}
    for line in readme.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match["file"]] = (match["version"], match["sha"])
    return rows


@pytest.mark.parametrize("folder", [STATIC / "vendor", AXE], ids=["htmx", "axe-core"])
def test_vendored_files_match_their_readme(folder: Path) -> None:
    rows = listed(folder / "README.md")
    scripts = sorted(p.name for p in folder.glob("*.js"))
    assert scripts and sorted(rows) == scripts, "every vendored script is in the README table"
    for name, (version, sha) in rows.items():
        assert version in name, f"{name} carries its version {version} in its name"
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == sha, name
        assert version in (folder / name).read_text(encoding="utf-8")[:20000]


def test_vendored_licences_are_present() -> None:
    assert "Zero-Clause BSD" in (STATIC / "vendor" / "htmx-LICENSE.txt").read_text()
    assert "Mozilla Public License" in (AXE / "LICENSE").read_text()


def test_the_base_template_loads_the_vendored_htmx_and_nothing_remote() -> None:
    htmx = [name for name in listed(STATIC / "vendor" / "README.md") if name.startswith("htmx")]
    sources: list[str] = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        sources += re.findall(r'<script[^>]*\bsrc="([^"]+)"', text)
        inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", text)
        data_only = [tag for tag in inline if 'type="application/json"' in tag]
        assert inline == data_only, f"inline script in {template}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"inline handler in {template}"
        assert not re.search(r'\sstyle\s*=\s*"', text), f"inline style in {template}"
        assert "<style" not in text and "|safe" not in text.replace(" ", ""), template
        assert not re.search(r'(?:src|href)="(?:https?:)?//', text), f"remote file in {template}"
    assert f"/console/static/vendor/{htmx[0]}" in sources
    for source in sources:
        assert source.startswith("/console/static/"), source
        assert (STATIC / source.removeprefix("/console/static/")).is_file(), source
