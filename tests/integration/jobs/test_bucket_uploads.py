"""A prompt file put straight into the bucket (the batch processor's ``S3_KEY``) becomes one job
per version of the object: a user who uploads a corrected file under the same key gets a job of
the new prompts, and no job reads a version it was not checked against."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.platform import local_platform
from textnlp.bootstrap import Platform
from textnlp.errors import InvalidInput
from textnlp.services.job_models import JobSpec, Owner

KEY = "prompts/user-uploads/u1/reviews.jsonl"


def prompt_file(*prompts: str) -> bytes:
    return "".join(json.dumps({"prompt": p}) + "\n" for p in prompts).encode()


@pytest.fixture
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with local_platform(tmp_path_factory.mktemp("home")) as built:
        yield built


def prompts_of(platform: Platform, job_id: str) -> list[str]:
    row = platform.job_runs.get(job_id)
    assert row is not None
    template = platform.job_runs.template(JobSpec.model_validate(row.spec))
    return [item.prompt for item in template.prompts]  # type: ignore[union-attr]


def test_each_version_of_an_object_is_its_own_job(platform: Platform) -> None:
    storage, jobs = platform.storage, platform.jobs
    storage.put_bytes(KEY, prompt_file("first draft"))
    first = jobs.submit_bucket_upload(KEY)

    storage.put_bytes(KEY, prompt_file("fixed A", "fixed B", "fixed C"))  # the same key again
    second = jobs.submit_bucket_upload(KEY)
    assert second.id != first.id
    assert (first.progress.total, second.progress.total) == (1, 3)
    assert prompts_of(platform, second.id) == ["fixed A", "fixed B", "fixed C"]
    # The first job still reads the version it was checked against.
    assert prompts_of(platform, first.id) == ["first draft"]

    again = jobs.submit_bucket_upload(KEY)  # a re-run task of the second version
    assert again.id == second.id
    assert {view.id for view in jobs.list(Owner(id="u1"))} == {first.id, second.id}


def test_a_key_without_a_user_or_file_is_refused(platform: Platform) -> None:
    for key in ("prompts/user-uploads/no-owner.jsonl", "prompts/user-uploads/u1/", "other/u1/x"):
        with pytest.raises(InvalidInput, match="S3_KEY must be"):
            platform.jobs.submit_bucket_upload(key)
