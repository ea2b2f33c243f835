"""What every recipe column shares: the context a cell is computed in, and its seeds.

A cell is one column of one record. Its randomness is a function of (run seed, record index,
column name) only, so adding, removing or editing another column never changes it, and a
record is the same whatever the concurrency or an interruption.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def cell_seed(run_seed: int, index: int, column: str) -> int:
    """A 32-bit seed for one cell, stable across Python versions and processes."""
    digest = hashlib.sha256(f"{run_seed}:{index}:{column}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class CellContext:
    """Where a cell is computed: its record, its column, the values of earlier columns."""

    seed: int
    index: int
    column: str
    #: Values of the columns computed so far in this record (the cell's dependencies included).
    row: Mapping[str, Any]
    #: The directory relative paths of the recipe (seed files) are resolved against.
    base_dir: Path = Path()

    @property
    def cell_seed(self) -> int:
        return cell_seed(self.seed, self.index, self.column)

    def rng(self) -> random.Random:
        """A generator for this cell alone."""
        return random.Random(self.cell_seed)
