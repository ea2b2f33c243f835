"""The library's template run whose every record failed raises ``DatasetFailed``, as the CLI
exits 1 and a job ends ``failed``: it returned a summary with ``written == 0`` and wrote no
file, so a script went on to read a dataset that was never made. Run on the embedded model."""

from __future__ import annotations

from pathlib import Path

import pytest

import textnlp
from textnlp.errors import DatasetFailed

#: The JSON grammar keeps the model's answer to the schema's shape; the bounds no number meets
#: are left to the check, so every record fails it.
JSON_TEMPLATE = """\
id: wants-json
version: "1.0"
user: "Give a number as JSON."
output:
  type: json
  schema: {type: object, properties: {n: {type: integer, minimum: 5, maximum: 4}}, required: [n]}
"""


def test_a_run_with_every_record_failed_raises_and_keeps_an_earlier_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEXTNLP_HOME", str(tmp_path / "home"))
    template = tmp_path / "wants-json.yaml"
    template.write_text(JSON_TEMPLATE)
    fresh, earlier = tmp_path / "fresh.jsonl", tmp_path / "earlier.jsonl"
    earlier.write_text('{"kept": true}\n')

    with pytest.raises(DatasetFailed) as raised:
        textnlp.generate_dataset(str(template), 2, fresh, max_tokens=48)
    assert raised.value.message.startswith("every record failed (2); the first, record 0: ")
    assert "invalid output: schema violation" in raised.value.message
    assert raised.value.details == {"failed": 2, "requested": 2}
    assert not fresh.exists()

    with pytest.raises(textnlp.DatasetFailed, match=r"earlier\.jsonl was not written \(it is"):
        textnlp.generate_dataset(str(template), 2, earlier, max_tokens=48, seed=1)
    assert earlier.read_text() == '{"kept": true}\n'
