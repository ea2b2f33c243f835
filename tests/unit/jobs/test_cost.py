"""Job cost and spending caps with an in-process worker on SQLite: the cost is summed from the
stored records and survives a resumed attempt; a job cap and a user cap fail the job before
they would be passed, keeping its records; a user past their cap cannot submit priced jobs."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import httpx2
import pytest

from tests.support.job_backends import MODELS_YAML, register
from tests.support.platform import job_service, run_worker
from tests.support.priced_backend import PRICE, PricedOpenAIFake, answer
from textnlp.backends.registry import register_backend
from textnlp.config import Settings, load_settings
from textnlp.errors import QuotaExceeded
from textnlp.services.job_models import JobSpec, Owner
from textnlp.services.jobs import JobService

ALICE = Owner(id="alice")


class FlakyPriced(PricedOpenAIFake):
    """The priced fake whose ``fail_at``-th request (counted over the class) answers 500 (a
    provider's passing fault: the attempt fails and the next one resumes)."""

    name = "openai-fake-flaky"
    calls: ClassVar[int] = 0
    fail_at: ClassVar[int] = 0

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        FlakyPriced.calls += 1
        if FlakyPriced.calls == FlakyPriced.fail_at:
            return httpx2.Response(500, json={"error": {"message": "injected failure"}})
        return answer(request)


MODELS = (
    MODELS_YAML
    + """
  - id: fake-flaky
    backend: openai-fake-flaky
    endpoint: http://flaky.test/v1
    context_length: 4096
"""
)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    register()
    register_backend("openai-fake-flaky", "tests.unit.jobs.test_cost:FlakyPriced")
    FlakyPriced.calls, FlakyPriced.fail_at = 0, 0
    models = tmp_path / "models.yaml"
    models.write_text(MODELS)
    monkeypatch.setenv("TEXTNLP_MODELS_FILE", str(models))
    return load_settings(
        generation={"response_cache": False, "max_count": 1000, "concurrency": 2},
        queue={"visibility_timeout_s": 30, "chunk_size": 4, "batch_threshold": 500},
        models={"prices": {"fake-priced": PRICE, "fake-flaky": PRICE}, "max_attempts": 1},
    )


def spec(count: int, model: str = "fake-priced", **kw: object) -> JobSpec:
    return JobSpec.model_validate(
        {"template": "product-review", "count": count, "model": model, **kw}
    )


def records_cost(jobs: JobService, job_id: str) -> float:
    records = list(jobs.store.iter_records(job_id, ok_only=False))
    return sum(r.provenance.cost_usd or 0.0 for r in records)


def test_job_cost_is_the_sum_of_its_records(settings: Settings, jobs: JobService) -> None:
    priced = jobs.submit(ALICE, spec(10))
    free = jobs.submit(ALICE, spec(5, "fake-fast"))
    assert priced.cost_usd is None and priced.max_cost_usd is None
    run_worker(settings)
    done = jobs.status(ALICE, priced.id)
    assert done.state == "succeeded" and done.progress.done == 10
    assert done.cost_usd is not None and done.cost_usd > 0
    assert done.cost_usd == pytest.approx(records_cost(jobs, priced.id))
    unpriced = jobs.status(ALICE, free.id)
    assert unpriced.state == "succeeded" and unpriced.cost_usd is None


def test_cost_survives_a_resumed_attempt(settings: Settings) -> None:
    # One request at a time: when the injected failure hits, no other request is in flight.
    settings = settings.model_copy(
        update={"generation": settings.generation.model_copy(update={"concurrency": 1})}
    )
    with job_service(settings) as jobs:
        reference = jobs.submit(ALICE, spec(24))
        run_worker(settings)
        expected = jobs.status(ALICE, reference.id).cost_usd
        FlakyPriced.fail_at = 11  # the first attempt stores 10 records, then fails
        view = jobs.submit(ALICE, spec(24, "fake-flaky"))
        run_worker(settings)
        done = jobs.status(ALICE, view.id)
        assert done.state == "succeeded" and done.attempts == 2
        assert FlakyPriced.calls == 24 + 1  # no stored record was generated (or paid) again
        assert jobs.store.count_records(view.id) == 24
        # Same prompts, same token counts: the resumed job costs what an uninterrupted one did.
        assert expected is not None and done.cost_usd == pytest.approx(expected)
        assert done.cost_usd == pytest.approx(records_cost(jobs, view.id))


def test_job_cap_fails_the_job_before_it_is_passed(settings: Settings, jobs: JobService) -> None:
    view = jobs.submit(ALICE, spec(40, max_cost_usd=0.5))
    assert view.max_cost_usd == 0.5
    run_worker(settings)
    failed = jobs.status(ALICE, view.id)
    assert failed.state == "failed" and failed.attempts == 1  # not retried
    assert failed.error is not None and "max_cost_usd" in failed.error
    assert "spending cap" in failed.error and "would exceed $0.5000" in failed.error
    kept = jobs.store.count_records(view.id)
    assert 0 < kept < 40 and f"{kept} of 40 records kept" in failed.error
    assert failed.cost_usd is not None and 0 < failed.cost_usd <= 0.5
    assert failed.cost_usd == pytest.approx(records_cost(jobs, view.id))
    assert jobs.queues.generation.dead_letters(10) == []  # acknowledged, not dead-lettered
    assert jobs.queues.generation.receive(1) == []


def test_a_resumed_job_keeps_what_it_spent_under_its_cap(
    settings: Settings, jobs: JobService
) -> None:
    FlakyPriced.fail_at = 7  # the first attempt spends on 6 records, then fails
    view = jobs.submit(ALICE, spec(40, "fake-flaky", max_cost_usd=1.0))
    run_worker(settings)
    failed = jobs.status(ALICE, view.id)
    assert failed.state == "failed" and failed.attempts == 2
    assert failed.error is not None and "max_cost_usd" in failed.error
    # Seeded with the first attempt's spend, the second stopped within the same $1.00.
    assert failed.cost_usd is not None and failed.cost_usd <= 1.0
    assert failed.cost_usd == pytest.approx(records_cost(jobs, view.id))


def with_models(settings: Settings, **values: object) -> Settings:
    return settings.model_copy(update={"models": settings.models.model_copy(update=values)})


def test_settings_give_jobs_a_default_cap(settings: Settings) -> None:
    capped = with_models(settings, job_spending_cap_usd=0.5)
    with job_service(capped) as jobs:
        view = jobs.submit(ALICE, spec(20))
        assert view.max_cost_usd == 0.5
        run_worker(capped)
        failed = jobs.status(ALICE, view.id)
        assert failed.state == "failed" and failed.cost_usd is not None
        assert 0 < failed.cost_usd <= 0.5


def test_user_cap_stops_jobs_and_refuses_priced_submits(settings: Settings) -> None:
    capped = with_models(settings, user_spending_cap_usd=0.4)
    with job_service(capped) as jobs:
        view = jobs.submit(ALICE, spec(30), idempotency_key="first")
        run_worker(capped)
        failed = jobs.status(ALICE, view.id)
    assert failed.state == "failed" and failed.error is not None
    assert "spending cap of user alice reached" in failed.error
    assert failed.cost_usd is not None and 0 < failed.cost_usd <= 0.4

    # Below what alice has spent, the cap refuses her priced jobs at submit...
    below = round(failed.cost_usd / 2, 6)
    with job_service(with_models(settings, user_spending_cap_usd=below)) as lower:
        with pytest.raises(QuotaExceeded, match="spending cap reached") as refused:
            lower.submit(ALICE, spec(5))
        assert refused.value.details["limit_usd"] == below
        assert refused.value.details["spent_usd"] == pytest.approx(failed.cost_usd)
        # A retried submit (same Idempotency-Key) gets its job back, whatever was spent since.
        assert lower.submit(ALICE, spec(30), idempotency_key="first").id == view.id
        # ...but unpriced models cost nothing and are never refused; bob has spent nothing.
        assert lower.submit(ALICE, spec(3, "fake-fast")).state == "queued"
        assert lower.submit(Owner(id="bob"), spec(3)).state == "queued"


def test_jobs_of_one_user_running_together_share_the_budget(settings: Settings) -> None:
    cap = 2.0
    capped = with_models(settings, user_spending_cap_usd=cap)
    with job_service(capped) as jobs:
        views = [jobs.submit(ALICE, spec(60, seed=seed)) for seed in (1, 2)]
        run_worker(capped, concurrency=2)
        done = [jobs.status(ALICE, view.id) for view in views]
    for view in done:
        assert view.state == "failed" and "spending cap of user alice" in (view.error or "")
    spent = sum(v.cost_usd or 0.0 for v in done)
    # Each request holds its worst case in the database, where the other job's see it: together
    # they never pass the cap (and spend most of it: a record's worst case is about $0.40).
    assert cap - 0.5 < spent <= cap


#: A recipe whose column calls the priced model itself: the job's own model (the default, the
#: embedded one) has no price and is never called.
PRICED_COLUMN_RECIPE = """
id: priced-notes
version: "1"
columns:
  fruit: {type: category, values: [apple, pear, plum]}
  note: {type: llm-text, model: fake-priced, prompt: "One short sentence about a {{ fruit }}.",
         params: {max_tokens: 20}}
"""


def test_user_cap_holds_for_a_recipe_whose_columns_call_a_priced_model(
    settings: Settings, tmp_path: Path
) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "priced-notes.yaml").write_text(PRICED_COLUMN_RECIPE)
    capped = with_models(settings, user_spending_cap_usd=0.2).model_copy(
        update={"templates_dir": recipes}
    )
    with job_service(capped) as jobs:
        view = jobs.submit(ALICE, JobSpec.model_validate({"recipe": "priced-notes", "count": 30}))
        run_worker(capped)
        failed = jobs.status(ALICE, view.id)
        assert failed.state == "failed", failed
        assert "spending cap of user alice" in (failed.error or "")
        assert failed.cost_usd is not None and 0 < failed.cost_usd <= 0.2
    # Below what alice has spent, the cap refuses her next job on that recipe at submit.
    below = with_models(settings, user_spending_cap_usd=failed.cost_usd / 2).model_copy(
        update={"templates_dir": recipes}
    )
    with job_service(below) as lower, pytest.raises(QuotaExceeded, match="spending cap"):
        lower.submit(ALICE, JobSpec.model_validate({"recipe": "priced-notes", "count": 3}))


#: A column whose every answer breaks its schema (the fake answers a question and an answer):
#: each record fails after its attempts, each of which was paid for.
FAILING_CELL_RECIPE = """
id: failing-cell
version: "1"
columns:
  fruit: {type: category, values: [apple, pear, plum]}
  rated: {type: llm-structured, model: fake-priced, retries: 1,
          prompt: "Rate a {{ fruit }}.", params: {max_tokens: 20},
          schema: {type: object, required: [rating], properties: {rating: {type: integer}}}}
"""


def test_a_cell_that_failed_is_charged_for_its_attempts(settings: Settings, tmp_path: Path) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "failing-cell.yaml").write_text(FAILING_CELL_RECIPE)
    with job_service(settings.model_copy(update={"templates_dir": recipes})) as jobs:
        view = jobs.submit(ALICE, JobSpec.model_validate({"recipe": "failing-cell", "count": 3}))
        run_worker(jobs.settings)
        done = jobs.status(ALICE, view.id)
        records = list(jobs.store.iter_records(view.id, ok_only=False))
    assert done.state == "failed" and len(records) >= 3, done  # candidates until it gives up
    assert all(r.status == "failed" and r.provenance.attempts == 2 for r in records), records
    # Each record paid for 2 answers of 20 tokens ($0.04 of output each, at $2 per 1K).
    assert all((r.provenance.cost_usd or 0.0) > 2 * 0.04 for r in records), records
    assert done.cost_usd == pytest.approx(sum(r.provenance.cost_usd or 0.0 for r in records))
