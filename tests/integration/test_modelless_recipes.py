"""A recipe whose columns call no model loads none (the embedded one took 2.4 GB and seconds
for a run of 0.2 s) and needs none to be available (a run naming a hosted model without its
key was refused), in a fresh interpreter as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

RECIPE = """
id: samplers-only
output: body
columns:
  product: {type: category, values: [earbuds, grinder, kettle]}
  rating: {type: uniform, low: 1, high: 5, integer: true}
  body: {type: expression, expr: "{{ product }} rated {{ rating }}"}
"""


def test_a_recipe_that_calls_no_model_loads_none(tmp_path: Path) -> None:
    recipe = tmp_path / "samplers.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "out.jsonl"
    script = textwrap.dedent(
        f"""
        import sys, textnlp
        textnlp.generate_dataset({str(recipe)!r}, 5, {str(out)!r}, model="gpt-4o-mini", seed=1)
        print("llama_cpp" in sys.modules)
        """
    )
    env = {"TEXTNLP_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"  # the engine was never imported, let alone loaded
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(5))
    assert all(r["text"].split(" rated ")[0] in {"earbuds", "grinder", "kettle"} for r in records)
