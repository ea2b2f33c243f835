"""cfn-lint and checkov over every synthesised template.

cfn-lint must report no error (warnings are listed in infra/README.md). Checkov must report no
failed check: the few the design requires are skipped in code (`textnlp_infra.checkov`), each
with its reason, and this test checks that every skip carries one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from infra_assembly import Assembly, require_tool

INFRA_DIR = Path(__file__).resolve().parent.parent


def _checkov() -> str | None:
    candidates = [os.environ.get("CHECKOV"), str(INFRA_DIR / ".venv-tools" / "bin" / "checkov")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("checkov")


def _templates(assembly: Assembly) -> list[str]:
    return sorted(str(p) for p in assembly.directory.glob("*.template.json"))


def _cfn_lint() -> str | None:
    beside = Path(sys.executable).parent / "cfn-lint"  # the venv's console script
    return str(beside) if beside.is_file() else shutil.which("cfn-lint")


def test_cfn_lint_reports_no_error(assembly: Assembly) -> None:
    cfn_lint = require_tool(_cfn_lint(), "cfn-lint")
    result = subprocess.run(
        [cfn_lint, "--format", "json", *_templates(assembly)],
        capture_output=True, text=True, check=False,
    )
    # Exit status is a bit mask of the levels found (2 error, 4 warning, 8 info); anything
    # else (1: it crashed) or no JSON means cfn-lint did not run, which must not pass.
    assert result.returncode & ~0b1110 == 0, result.stderr[-2000:]
    findings = json.loads(result.stdout)
    assert isinstance(findings, list)
    errors = [f for f in findings if f["Level"] == "Error"]
    assert not errors, json.dumps(errors, indent=1)[:4000]
    # A deprecated engine version synthesises fine and fails at deployment: not a mere warning.
    deprecated = [f for f in findings if f["Rule"]["Id"] == "W3690"]
    assert not deprecated, json.dumps(deprecated, indent=1)[:2000]


def test_checkov_reports_no_failed_check(assembly: Assembly) -> None:
    checkov = require_tool(_checkov(), "checkov")
    result = subprocess.run(
        [checkov, "--framework", "cloudformation", "--skip-download",
         "--output", "json", "--directory", str(assembly.directory)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "LOG_LEVEL": "ERROR"},
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for r in reports for check in r["results"].get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    skipped = [check for r in reports for check in r["results"].get("skipped_checks", [])]
    assert skipped, "the design's exceptions (e.g. ALB port 80) should appear as skips"
    for check in skipped:
        assert check["check_result"].get("suppress_comment"), check["check_id"]


def test_every_skip_is_annotated_in_code(assembly: Assembly) -> None:
    for template in assembly.templates.values():
        for resource in template["Resources"].values():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert skip["comment"].strip()
