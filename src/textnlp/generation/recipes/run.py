"""A recipe run: candidates until exactly ``count`` records pass every filter, or a budget ends.

Candidates are numbered 0, 1, 2...; candidate ``i``'s cells depend only on (seed, i, column),
so the dataset is the first ``count`` accepted candidates by index, whatever the concurrency.
Finished candidates are committed in index order: the near-duplicate filter compares a
candidate with the accepted ones before it, and each committed candidate (accepted, rejected
or failed) goes to the sink, so nothing is silently lost and a resume continues after the last
committed one. Candidates in flight when the count is reached are surplus: they are cancelled
(what they had made stays in the response cache).

How many run at once follows the acceptance rate seen so far: enough to fill the remaining
count, at most ``concurrency``. ``max_candidates`` bounds the work when too few pass; the run
then ends like a spending cap does: the accepted records are written and the error says why.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from textnlp.domain import Record
from textnlp.errors import CandidatesExhausted, Conflict
from textnlp.extras import require_modules
from textnlp.generation.recipes.cells import RecordBuilder
from textnlp.generation.recipes.recipe import Recipe
from textnlp.generation.sinks import RecordSink
from textnlp.generation.templates import record_seed

OnRecord = Callable[[Record], None]


@dataclass
class Acceptance:
    """What became of the candidates: the summary's and the dataset card's counts."""

    candidates: int = 0
    accepted: int = 0
    failed: int = 0
    #: Rejections by filter column.
    rejected: Counter[str] = field(default_factory=Counter)
    #: The first failed candidate's reason: what a run that accepted nothing was stopped by.
    first_failure: str | None = field(default=None, compare=False)

    def count(self, record: Record) -> None:
        self.candidates += 1
        if record.status == "ok":
            self.accepted += 1
        elif record.status == "failed":
            self.failed += 1
            self.first_failure = self.first_failure or record.error
        else:
            self.rejected[(record.error or "?").split(":", 1)[0]] += 1

    @property
    def rate(self) -> float:
        return self.accepted / self.candidates if self.candidates else 1.0

    def per_filter(self, filters: list[str]) -> dict[str, float]:
        """Each filter's pass rate over all candidates: 1 - its rejections / candidates. (A
        record stops at its first rejection and filters run as soon as their columns are
        ready, so which filters saw which candidate is not counted.)"""
        return {
            name: round(1 - self.rejected[name] / self.candidates, 4) if self.candidates else 1.0
            for name in filters
        }

    def as_dict(self, filters: list[str]) -> dict[str, Any]:
        return {
            "candidates": self.candidates,
            "accepted": self.accepted,
            "failed": self.failed,
            "rejected": {name: self.rejected[name] for name in filters if self.rejected[name]},
            "acceptance_rate": round(self.rate, 4),
            "pass_rate_per_filter": self.per_filter(filters),
        }


class RecipeRun:
    """One run of ``builder``'s recipe into ``sink``."""

    def __init__(
        self,
        recipe: Recipe,
        builder: RecordBuilder,
        sink: RecordSink,
        *,
        count: int,
        max_candidates: int,
        concurrency: int,
        on_record: OnRecord | None = None,
    ) -> None:
        self.recipe = recipe
        self.builder = builder
        self.sink = sink
        self.count = count
        self.max_candidates = max_candidates
        self.concurrency = max(1, concurrency)
        self.on_record = on_record
        self.acceptance = Acceptance()
        for name, column in recipe.columns.items():  # before a candidate is paid for
            require_modules(f"the filter {name!r}", *getattr(column, "needs", ()))
        self._duplicates = [
            (name, column.index())  # type: ignore[union-attr]
            for name, column in recipe.columns.items()
            if getattr(column, "stateful", False)
        ]
        self._next = 0

    def replay(self, done: Iterable[Record], keep: Callable[[Record], None] | None = None) -> None:
        """Take a resumed run's committed candidates (read in index order), once they are known
        to be of this recipe and seed (``Conflict`` otherwise); ``keep`` sees each as it is
        read (a large run is never held). A missing index is a candidate that was not kept: a
        finished run's output holds its accepted candidates only, so the run goes on after
        the last one, as it would have gone on (each candidate has its own seed)."""
        accepted = expected = 0
        for record in done:
            self._check_resumable(record)
            if record.index < expected:
                raise Conflict(
                    f"{self.sink.source}: candidate {record.index} is there twice or out of "
                    "order; write to another file"
                )
            # Candidates not kept were tried: counted (their filters unknown), never redone.
            self.acceptance.candidates += record.index - expected
            expected = record.index
            accepted += record.status == "ok"
            self._commit(record, store=False)
            if keep is not None:
                keep(record)
            expected += 1
        if accepted > self.count:
            raise Conflict(
                f"{self.sink.source} has {accepted} accepted records; resuming with count "
                f"{self.count} would delete them (resume with count {accepted} or more, or "
                "write to another file)"
            )
        self._next = expected

    def _check_resumable(self, record: Record) -> None:
        source, recipe, index = self.sink.source, self.recipe, record.index
        made = record.provenance
        if (made.template_id, made.template_version) != (recipe.id, recipe.version):
            raise Conflict(
                f"cannot resume {source}: its record {index} was made with "
                f"{made.template_id!r} version {made.template_version!r}, not recipe "
                f"{recipe.id!r} version {recipe.version!r}; write to another file"
            )
        if made.seed != record_seed(self.builder.seed, index):
            raise Conflict(
                f"cannot resume {source}: its record {index} was made with another seed; "
                "resume with the original --seed, or write to another file"
            )
        difference = self.builder.difference(record)
        if difference is not None:
            raise Conflict(
                f"cannot resume {source}: its record {index} {difference}; resume with the "
                "original options, or write to another file"
            )

    async def run(self) -> None:
        """Until ``count`` are accepted; ``CandidatesExhausted`` when the budget ends first."""
        running: dict[asyncio.Task[Record], int] = {}
        finished: dict[int, Record] = {}
        try:
            while self.acceptance.accepted < self.count:
                while len(running) < self._wanted(finished) and self._next < self.max_candidates:
                    task = asyncio.create_task(self.builder.build(self._next))
                    running[task] = self._next
                    self._next += 1
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    finished[running.pop(task)] = task.result()
                self._commit_ready(finished)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        if self.acceptance.accepted < self.count:
            a = self.acceptance
            failed = f"; {a.failed} failed, first: {a.first_failure}" if a.failed else ""
            kept = "; the accepted ones are kept" if a.accepted else ""
            raise CandidatesExhausted(
                f"only {a.accepted} of {self.count} records passed after {a.candidates} "
                f"candidates, the most allowed (acceptance {a.rate:.0%}{failed}){kept}",
                written=a.accepted,
                requested=self.count,
                candidates=a.candidates,
                max_candidates=self.max_candidates,
            )

    def _wanted(self, finished: dict[int, Record]) -> int:
        """Candidates to have running: the records still needed at the rate seen so far.

        A finished candidate waiting for an earlier one to commit holds no slot (a slow record,
        a judge retrying, would otherwise stall the whole window behind it); if it passes, it
        counts as needed no more."""
        waiting = sum(1 for record in finished.values() if record.status == "ok")
        remaining = self.count - self.acceptance.accepted - waiting
        if remaining <= 0:
            return 0
        rate = self.acceptance.rate if self.acceptance.candidates >= 4 else 1.0
        return min(self.concurrency, max(1, math.ceil(remaining / max(rate, 0.05))))

    def _commit_ready(self, finished: dict[int, Record]) -> None:
        # Candidates are committed in index order: the next one is number ``candidates``.
        while self.acceptance.candidates in finished:
            if self.acceptance.accepted >= self.count:
                return  # the rest is surplus
            self._commit(finished.pop(self.acceptance.candidates))

    def _commit(self, record: Record, *, store: bool = True) -> None:
        if record.status == "ok":
            for name, index in self._duplicates:
                reason = index.check(_row(record))
                if reason is not None:
                    record = record.model_copy(
                        update={"status": "rejected", "error": f"{name}: {reason}"}
                    )
                    break
            else:
                for _, index in self._duplicates:
                    index.add(_row(record), record.index)
        self.acceptance.count(record)
        if store:
            self.sink.append(record)
            if self.on_record is not None:
                self.on_record(record)


def _row(record: Record) -> dict[str, Any]:
    return {**record.variables, **(record.data or {})}
