"""The typed boundary of batch jobs: what a user submits and what a status answers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    UrlConstraints,
    field_validator,
    model_validator,
)

from textnlp.domain.generation import MAX_TOKENS_LIMIT
from textnlp.domain.jobs import JOB_ID, JobState
from textnlp.egress import MAX_URL_LENGTH
from textnlp.errors import quoted
from textnlp.services.text_boundary import TextBoundary
from textnlp.validation.gate import Gate
from textnlp.validation.safe_schema import MAX_DEPTH, deeper_than

OutputFormat = Literal["jsonl", "csv", "parquet"]


class PromptItem(TextBoundary):
    """One prompt of a prompt list or file; other fields become the record's variables."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    system: str | None = None
    variables: dict[str, str | int | float | bool | None] = {}


#: A storage key under ``prompts/user-uploads/`` (the characters ``Keys.check_key`` allows, no
#: empty, ``.`` or ``..`` segment).
_SEGMENT = r"[A-Za-z0-9!_.*'() =-]*[A-Za-z0-9!_*'() =-][A-Za-z0-9!_.*'() =-]*"
#: A catalogue template's or recipe's id (``api.schemas.TEMPLATE_ID``).
_CATALOGUE_ID = r"^[a-z0-9][a-z0-9_-]*$"
_UPLOAD_KEY = rf"^prompts/user-uploads/({_SEGMENT}/)*{_SEGMENT}$"


def _absent(*fields: str) -> dict[str, Any]:
    return {name: {"type": "null"} for name in fields}


#: The one-source rule of ``_one_source`` in the JSON Schema too, so that clients and schema
#: tools know ``{}`` or a template without ``count`` is invalid before they send it.
_ONE_SOURCE: dict[str, Any] = {
    "oneOf": [
        {
            "title": "template job",
            "required": ["template", "count"],
            "properties": {
                "template": {"type": "string"},
                "count": {"type": "integer"},
                **_absent("prompts", "prompt_file"),
            },
        },
        {
            "title": "prompt list job",
            "required": ["prompts"],
            "properties": {
                "prompts": {"type": "array"},
                "variables": {"maxProperties": 0},
                **_absent("template", "prompt_file"),
            },
        },
        {
            "title": "prompt file job",
            "required": ["prompt_file"],
            "properties": {
                "prompt_file": {"type": "string"},
                "variables": {"maxProperties": 0},
                **_absent("template", "prompts"),
            },
        },
    ]
}


class JobParams(BaseModel):
    """Sampling parameters of a job's requests; unset ones come from the template and model.

    No ``seed`` or ``n``: every record gets its own seed from the job's ``seed`` and its index.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: list[str] | None = None

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


#: A webhook secret's key, in bytes (Standard Webhooks: 24 to 64).
WEBHOOK_KEY_BYTES = (24, 64)


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_`` and the base64 of 24 to 64
    random bytes), as their verifiers read it; ``ValueError`` for anything else."""
    import base64
    import binascii

    low, high = WEBHOOK_KEY_BYTES
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True) if secret.startswith("whsec_") else b""
    except (binascii.Error, ValueError):
        key = b""
    if not low <= len(key) <= high:
        raise ValueError(
            f"webhook_secret must be 'whsec_' and the base64 of {low} to {high} random bytes "
            '(Standard Webhooks), e.g. python -c "import base64, secrets; '
            "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
        )
    return key


class JobSpec(TextBoundary):
    """A batch job: exactly one of ``template`` (+ ``count``), ``prompts`` or ``prompt_file``.

    Its text is valid Unicode (``TextBoundary``), and ``template`` is a catalogue id: a job
    runs on a server, where a path would read the server's files.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_SOURCE)

    template: str | None = Field(default=None, min_length=1, max_length=200, pattern=_CATALOGUE_ID)
    count: int | None = Field(default=None, ge=1)
    variables: dict[str, Any] = {}
    prompts: list[Annotated[str, Field(min_length=1)] | PromptItem] | None = Field(
        default=None, min_length=1
    )
    #: Storage key of an uploaded JSONL/CSV prompt file (under ``prompts/user-uploads/``).
    prompt_file: str | None = Field(default=None, pattern=_UPLOAD_KEY)
    model: str | None = Field(None, min_length=1, max_length=200)
    params: JobParams = JobParams()
    seed: int = Field(0, ge=0, le=2**32 - 1)  # as a request's seed
    format: OutputFormat = "jsonl"
    #: Validate the result and fail the job when this gate fails (no embeddings: fast).
    validation: Gate | None = None
    #: POSTed the finished job; http(s), no credentials, public addresses only (``textnlp.egress``).
    webhook_url: Annotated[AnyHttpUrl, UrlConstraints(max_length=MAX_URL_LENGTH)] | None = None
    #: Signs each notice to ``webhook_url`` (HMAC-SHA256, the Standard Webhooks scheme:
    #: ``worker.notify``), so that its receiver can tell it from a forged or replayed one. A
    #: Standard Webhooks secret (``whsec_`` and base64), what their verifiers take.
    #: Write-only: ``JobService.spec`` never shows it again.
    webhook_secret: str | None = Field(default=None, max_length=256)
    #: Spending cap of the job in US dollars; the job fails before it would pass it.
    max_cost_usd: float | None = Field(default=None, ge=0)
    #: A recipe job's most candidates (default 4 per record asked): see ``recipes.run``.
    max_candidates: int | None = Field(default=None, ge=1)
    #: Send the requests through the provider's batch API (OpenAI Batch API, Anthropic Message
    #: Batches, Bedrock batch inference) at its batch price instead of one call each; see
    #: ``worker.provider_batch``. Template and prompt jobs on OpenAI, Anthropic, Bedrock or
    #: SageMaker models.
    provider_batch: bool = False

    @field_validator("count", "seed", "max_cost_usd", "max_candidates", mode="before")
    @classmethod
    def _not_a_bool(cls, value: Any) -> Any:
        # ``true`` was read as 1 (``max_cost_usd: true`` a cap of $1); a form's "3" still is 3.
        if isinstance(value, bool):
            raise ValueError("expected a number, not true or false")
        return value

    @model_validator(mode="before")
    @classmethod
    def _recipe_is_a_template_name(cls, data: Any) -> Any:
        """``recipe: persona-qa`` names a catalogue recipe, as ``template`` does."""
        if isinstance(data, dict) and "recipe" in data:
            if data.get("template") is not None:
                raise ValueError("give template or recipe, not both")
            recipe = data["recipe"]
            if not isinstance(recipe, str) or len(recipe) > 200:
                recipe_ok = False
            else:
                recipe_ok = re.fullmatch(_CATALOGUE_ID, recipe) is not None
            if not recipe_ok:
                # Said of the field the client sent, not of the one it is renamed to.
                raise ValueError(
                    f"recipe: {quoted(recipe)} is no catalogue id (lowercase letters, digits, "
                    "'-' and '_', at most 200 characters)"
                )
            data = {**data, "template": recipe}
            del data["recipe"]
        return data

    @model_validator(mode="after")
    def _one_source(self) -> JobSpec:
        sources = [s for s in ("template", "prompts", "prompt_file") if getattr(self, s)]
        if len(sources) != 1:
            raise ValueError("give exactly one of template (with count), prompts, prompt_file")
        if self.template and self.count is None:
            raise ValueError("a template job needs count")
        if not self.template and self.count is not None:
            raise ValueError("count applies to template jobs: prompts give one record each")
        if not self.template and self.variables:
            raise ValueError("variables apply to template jobs only")
        if deeper_than(self.variables, MAX_DEPTH):  # its JSON must be storable
            raise ValueError(f"variables are nested deeper than {MAX_DEPTH} levels")
        if self.webhook_secret is not None and self.webhook_url is None:
            raise ValueError("webhook_secret signs the notices to webhook_url: give both")
        if self.webhook_secret is not None:
            webhook_key(self.webhook_secret)  # refuses one that no verifier would take
        return self


class JobProgress(BaseModel):
    done: int
    total: int
    failed: int = 0


class JobTimings(BaseModel):
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    elapsed_s: float | None = None


class JobResult(BaseModel):
    format: OutputFormat
    key: str
    #: Where to download: a presigned S3 URL, or (set by the API) its own results route.
    url: str | None = None
    validation_key: str | None = None


class JobView(BaseModel):
    id: str
    #: The id of the user who submitted it (an admin's list holds everyone's jobs).
    owner_id: str
    state: JobState
    progress: JobProgress
    timings: JobTimings
    model: str
    queue: str
    attempts: int
    error: str | None = None
    result: JobResult | None = None
    #: Estimated cost in US dollars of the stored records; None when the model has no price.
    cost_usd: float | None = None
    #: The job's spending cap (its own, else the settings' default); None: no cap.
    max_cost_usd: float | None = None


class JobMessage(BaseModel):
    """The body of a queue message: which job, and which of its steps to run (generation on
    the generation and batch queues, the validation gate on the validation queue).

    Fields it does not know are ignored: a newer release may add some, and its messages reach
    this release's workers while a deployment rolls."""

    model_config = ConfigDict(extra="ignore")

    job_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    step: Literal["generate", "validate"] = "generate"
    v: Literal[1] = 1


def job_id_of(body: str) -> str | None:
    """The job id of a message body that is not a ``JobMessage`` (a newer release's step, a
    field of the wrong type), when it names one."""
    try:
        raw = json.loads(body)
    except ValueError:
        return None
    job_id = raw.get("job_id") if isinstance(raw, dict) else None
    return job_id if isinstance(job_id, str) and JOB_ID.fullmatch(job_id) else None


@dataclass(frozen=True)
class Owner:
    """Who asks: their id, and whether they may see every job."""

    id: str
    is_admin: bool = False


class UploadedFile(BaseModel):
    """A prompt file of the user's: ``name`` is what its deletion takes, ``key`` what a job's
    ``prompt_file`` does."""

    name: str
    key: str
    bytes: int


class UploadList(BaseModel):
    uploads: list[UploadedFile]
    #: What the user's files take of ``quota_bytes`` (``api.max_upload_bytes_per_user``):
    #: these and those uploaded to ``/v1/files``.
    used_bytes: int
    quota_bytes: int
