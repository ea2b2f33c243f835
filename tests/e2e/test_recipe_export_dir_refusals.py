"""``textnlp generate -r RECIPE -o DIR/`` whose candidates are all rejected, as a user runs it:
the one line says why and what became of the directory. It said "ds2 holds no
data/train-*.parquet: not a textnlp export" of a directory never written, and "0 of 2 records
written to card_ds" of an earlier export whose card the failed run had rewritten."""

from __future__ import annotations

from pathlib import Path

from tests.support.real_cli import run_cli

#: Samplers and a filter that rejects every candidate: no model is loaded or called.
NEVER = """\
id: never
output: topic
columns:
  topic: {type: category, values: [tea, coffee]}
  never: {type: filter, rule: expression, expr: "topic == 'juice'"}
"""


def test_a_new_directory_is_not_written_and_the_line_says_why(tmp_path: Path) -> None:
    (tmp_path / "never.yaml").write_text(NEVER)
    result = run_cli(
        tmp_path, "generate", "-r", "never.yaml", "-n", "1", "-o", "ds2/", "--max-candidates", "2"
    )
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert line.startswith("error: only 0 of 1 records passed after 2 candidates"), line
    assert "ds2 was not written" in line and "\n" not in line
    assert line.endswith("(run again with --resume and a --max-candidates above 2 to continue)")
    assert not (tmp_path / "ds2").exists()


def test_an_earlier_export_and_its_card_are_left_as_they_were(tmp_path: Path) -> None:
    (tmp_path / "never.yaml").write_text(NEVER)
    (tmp_path / "all.yaml").write_text(NEVER.replace("topic == 'juice'", "true"))
    made = run_cli(tmp_path, "generate", "-r", "all.yaml", "-n", "2", "-o", "card_ds/")
    assert made.returncode == 0, made.stderr
    out = tmp_path / "card_ds"
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    result = run_cli(
        tmp_path, "generate", "-r", "never.yaml", "-n", "2", "-o", "card_ds/",
        "--max-candidates", "3",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "card_ds is unchanged" in result.stderr and "written to" not in result.stderr
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
