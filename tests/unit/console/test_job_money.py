"""How a job's page writes its spending cap and cost (``pages.jobs``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from textnlp.api.console.pages.jobs import cost_text, usd_text
from textnlp.services.job_models import JobProgress, JobTimings, JobView


@pytest.mark.parametrize(
    ("amount", "text"),
    [(0.0, "0.0000"), (2.5, "2.5000"), (0.004, "0.0040"), (0.00004, "0.00004"), (1e-13, "0")],
)
def test_a_cap_keeps_what_four_decimals_would_lose(amount: float, text: str) -> None:
    assert usd_text(amount) == text


def view(cost: float | None, done: int, failed: int = 0) -> JobView:
    return JobView(
        id="0" * 32,
        owner_id="u",
        state="failed",
        progress=JobProgress(done=done, total=2, failed=failed),
        timings=JobTimings(created_at=datetime.now(UTC)),
        model="m",
        queue="q",
        attempts=1,
        cost_usd=cost,
    )


def test_no_cost_is_no_price_only_once_records_were_stored() -> None:
    assert cost_text(view(None, 0)) == "none recorded"
    assert cost_text(view(None, 1)) == "no price"
    assert cost_text(view(None, 0, failed=1)) == "no price"
    assert cost_text(view(0.0000123, 1)) == "0.000012"
