"""What the dataset report keeps of each record: its text and the few figures it sums up.

A dataset may hold a million records and the validation worker 8 GB, where a ``DatasetRow`` and
a ``TextQuality`` kept per record cost about 9 KB. So rows are read one at a time
(``loader.iter_rows``) and each is reduced to the numbers the report's summaries use, in typed
arrays (about 50 bytes a record, and 8 for each numeric label); labels and JSON fields are
tallied as they come (``stats.FieldTally``). The handful of records a report shows are measured
again (``examples.py``).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from textnlp.validation.loader import DatasetRow
from textnlp.validation.quality import check_json, figures
from textnlp.validation.schema import MadeBy
from textnlp.validation.stats import FieldTally

#: ``truncated`` and ``json_valid`` of a record: False, True, or not known (no finish_reason;
#: no JSON check).
NO, YES, UNKNOWN = 0, 1, -1


class Measures:
    """The records' texts and figures, one column per figure, in record order."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.n_words = array("q")
        self.n_tokens = array("q")
        self.n_chars = array("q")
        self.empty = array("b")
        self.truncated = array("b")  # NO, YES or UNKNOWN
        self.json_valid = array("b")  # NO or YES once ``check_json`` ran, else empty
        self.pii = array("b")  # whether the record holds personal data
        self.replacement = array("b")  # whether it holds U+FFFD (bytes that were not UTF-8)
        self.repeated_ngram_ratio = array("d")
        self.distinct_2 = array("d")  # NaN where the text has no bigram
        #: Findings of each kind in all records, in order of first sight (the report's order).
        self.pii_kinds: Counter[str] = Counter()
        self.labels = FieldTally()
        self.fields = FieldTally()  # of the rows' JSON ``data``
        self.has_data = False
        #: The templates that made the rows (two are as good as many: no schema applies).
        self.made_by: set[MadeBy] = set()

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, row: DatasetRow) -> None:
        """Keep ``row``'s text and figures (readability and language: on a sample, later)."""
        measured = figures(row.text, finish_reason=row.finish_reason)
        self.texts.append(row.text)
        self.n_words.append(len(measured.word_list))
        self.n_tokens.append(measured.n_tokens)
        self.n_chars.append(measured.n_chars)
        self.empty.append(measured.empty)
        self.truncated.append(UNKNOWN if measured.truncated is None else int(measured.truncated))
        self.pii.append(bool(measured.pii))
        self.replacement.append(measured.replacement_chars > 0)
        self.pii_kinds.update(finding.kind for finding in measured.pii)
        self.repeated_ngram_ratio.append(measured.repeated_ngram_ratio)
        self.distinct_2.append(np.nan if measured.distinct_2 is None else measured.distinct_2)
        self.labels.add(row.labels)
        if row.data:
            self.fields.add(row.data)
            self.has_data = True
        if len(self.made_by) < 2:
            self.made_by.add((row.template_id, row.template_version))

    def check_json(self, schema: dict[str, Any]) -> None:
        """Whether each text holds a JSON object meeting ``schema`` (known once every row is)."""
        self.json_valid = array("b", (int(check_json(text, schema)[0]) for text in self.texts))

    def column(self, name: str) -> npt.NDArray[Any]:
        """A column as a NumPy array (a view: call it once every row is added)."""
        values: array[Any] = getattr(self, name)
        return np.frombuffer(values, dtype=values.typecode)


def measure(rows: Iterable[DatasetRow]) -> Measures:
    measures = Measures()
    for row in rows:
        measures.add(row)
    return measures
