"""Fixtures for the infra tests: the production app is synthesised once per test session.

Every test reads the same cloud assembly (templates are loaded from its JSON files), so a
full run costs one synthesis; cfn-lint and checkov scan the same directory.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

INFRA_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(INFRA_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infra_assembly import Assembly  # noqa: E402
from textnlp_infra.app import build_app  # noqa: E402


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assembly]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    # No credentials and no region from the developer's shell may leak into synthesis.
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("AWS_")}
    try:
        app, stacks = build_app("production", outdir=str(outdir))
        app.synth()
    finally:
        os.environ.update(saved)
    manifest = json.loads((outdir / "manifest.json").read_text())
    templates = {
        section: json.loads((outdir / stack.template_file).read_text())
        for section, stack in stacks.items()
    }
    yield Assembly(outdir, manifest, templates)
