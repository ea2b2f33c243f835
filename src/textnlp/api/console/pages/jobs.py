"""Jobs: the list with live progress, submit, one job's page, cancel, delete, download.

Every page calls ``JobService`` as the API's job routes do (``textnlp.api.routers.jobs``), with
the logged-in user as the ``Owner``: an admin sees everyone's jobs, anyone else only their own,
and another user's job answers 404 like a missing one.

Live progress is Server-Sent Events (``GET /console/jobs/events``, sse-starlette as the API
uses it), authenticated by the session cookie like any page. The server polls the service
every ``POLL_S`` and sends a ``progress`` event for each job whose state or progress changed
(the first poll sends every job), and on the list's stream a ``gone`` event for a job it told
of that is no longer among the latest (deleted, purged); the stream ends when the client goes
away, when its session ends or its user's role changes (checked every ``SESSION_CHECK_S``, as
the API's streams check their credential: a logout stops the updates, an admin made a user
stops seeing others' jobs), and, for the stream of one job (``?job=<id>``), once that job has
ended. ``static/jobs.js``
applies the events to the page, and fetches the list's rows again (``GET /console/jobs/rows``)
for a job it has no row for; without JavaScript the pages work and a reload shows the
current state.

The submit form carries an idempotency key made for each rendering of the form, so a form sent
twice (a double click, a resent POST) makes one job, as the API's ``Idempotency-Key`` does.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Form, Request, Response
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from textnlp.api.console.csrf import CsrfChecked
from textnlp.api.console.render import page, redirect
from textnlp.api.console.session import SESSION_COOKIE, ConsoleUser
from textnlp.api.deps import RECHECK_S
from textnlp.api.downloads import result_response
from textnlp.api.open_sockets import OpenSockets
from textnlp.auth.service import AuthService, Principal
from textnlp.domain.jobs import TERMINAL_STATES
from textnlp.errors import (
    AuthError,
    Conflict,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    ServiceUnavailable,
    public_message,
)
from textnlp.services.generation import GenerationService
from textnlp.services.job_models import JobSpec, JobView, OutputFormat, Owner
from textnlp.services.jobs import JobService

router = APIRouter(prefix="/jobs")

#: How often an event stream looks at the jobs, and how often it checks that its session lives.
POLL_S = 1.0
SESSION_CHECK_S = RECHECK_S
#: How long an ended job's page waits at most for its worker to let it go (a worker that died
#: never does): a cancelled or failed job's kept records are published after its state.
SETTLE_WAIT_S = 900.0
#: Keep-alive comments, so that proxies do not close a quiet stream.
PING_S = 15
#: How long a browser waits before it reconnects a stream that ended (milliseconds).
RETRY_MS = 3000
#: Jobs on the list page (and in its stream): the latest, as the API's list.
LIST_LIMIT = 50

FORMATS: tuple[str, ...] = get_args(OutputFormat)


def _jobs(request: Request) -> JobService:
    service: JobService = request.app.state.jobs
    return service


def _owner(user: Principal) -> Owner:
    return Owner(id=str(user.id), is_admin=bool(user.is_admin))


def progress(view: JobView) -> dict[str, Any]:
    """A job's live state: the page's progress cells and each event's data."""
    done, total = view.progress.done, view.progress.total
    percent = min(100, done * 100 // total) if total else (100 if view.state == "succeeded" else 0)
    return {
        "id": view.id,
        "state": view.state,
        "done": done,
        "total": total,
        "failed": view.progress.failed,
        "percent": percent,
        "error": view.error,
        #: Set once there is a file to download: a cancelled job's records made so far come
        #: after its state (the worker publishes them when it stops).
        "result_format": view.result.format if view.result else None,
    }


def list_row(view: JobView, owners: dict[str, str] | None = None) -> dict[str, Any]:
    """A row of the jobs list, its strings made here (cheaper than in the template); with
    ``owners`` (an admin's list: id -> username), the row names its owner."""
    created = view.timings.created_at
    live = progress(view)
    failed = f", {live['failed']} failed" if live["failed"] else ""
    return {
        "id": view.id,
        "short_id": view.id[:12],
        "model": view.model,
        "created_iso": created.isoformat() if created else "",
        "created_text": created.strftime("%Y-%m-%d %H:%M") if created else "",
        "cost": f"{view.cost_usd:.4f}" if view.cost_usd is not None else "—",
        "live": live,
        "bar_max": max(live["total"], 1),
        "progress_text": f"{live['done']} / {live['total']} ({live['percent']} %){failed}",
        "owner": None if owners is None else owners.get(view.owner_id, view.owner_id),
    }


def _rows(request: Request, user: Principal) -> list[dict[str, Any]]:
    """The list's rows as ``user`` sees them (blocking: call it in a thread)."""
    views = _jobs(request).list(_owner(user), LIST_LIMIT)
    owners = None
    if user.is_admin:  # everyone's jobs: say whose
        auth: AuthService = request.app.state.auth
        owners = auth.usernames({view.owner_id for view in views})
    return [list_row(view, owners) for view in views]


# -- the list and the submit form ----------------------------------------------------------------
def _catalogue(request: Request) -> dict[str, Any]:
    """What the form offers: the catalogue's recipes, templates and models (the lists that
    ``textnlp recipes list`` and ``GET /api/v1/models/list`` give)."""
    library = _jobs(request).templates
    generation: GenerationService = request.app.state.generation
    settings = request.app.state.settings
    return {
        "recipes": library.recipes(),
        "templates": library.all(),
        "models": generation.models(),
        "default_model": settings.default_model,
        "max_count": settings.generation.max_count,
        "formats": FORMATS,
    }


async def _list_page(
    request: Request,
    user: Principal,
    *,
    form: dict[str, str] | None = None,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    rows = await run_in_threadpool(_rows, request, user)
    catalogue = _catalogue(request)  # in memory: no thread hop
    context = {
        "jobs": rows,
        "form": form or {},
        "errors": errors or [],
        "idempotency_key": uuid.uuid4().hex,
        "max_variables": MAX_VARIABLES,
        **catalogue,
    }
    return page(request, "jobs.html", context, user=user, status_code=status_code)


@router.get("")
async def jobs_page(request: Request, user: ConsoleUser) -> Response:
    return await _list_page(request, user)


@router.get("/rows")
async def job_rows(request: Request, user: ConsoleUser) -> Response:
    """The list's rows alone: ``jobs.js`` swaps them in when a job it has no row for appears
    (submitted in another tab, by the API or the CLI)."""
    rows = await run_in_threadpool(_rows, request, user)
    return page(request, "job_rows.html", {"jobs": rows}, user=user)


def parse_variables(text: str) -> dict[str, str]:
    """``name=value`` lines (blank lines skipped) as a template's variables."""
    variables: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            raise InvalidInput(f"variables, line {number}: write name=value")
        variables[name.strip()] = value.strip()
    return variables


#: The most characters of the Variables box (its ``maxlength``), counted as the browser counts
#: them: a line break is one character, though a form sends it as CRLF.
MAX_VARIABLES = 20_000

#: The form's whole-number fields.
_WHOLE = ("count", "seed", "max_tokens")


def _whole(text: str) -> str:
    """A whole number as a browser's number input may send it ("1e3", "10.0": its ``step="1"``
    passes them) in digits; anything else as it is, for the model to refuse."""
    if text.isdigit():
        return text  # exact, however long
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def spec_fields(form: dict[str, str]) -> dict[str, Any]:
    """The ``JobSpec`` fields of the submit form: what was left empty is not set."""
    given = {name: value.strip() for name, value in form.items() if value.strip()}
    given |= {name: _whole(given[name]) for name in _WHOLE if name in given}
    fields: dict[str, Any] = {
        name: given[name]
        for name in ("template", "count", "model", "seed", "format", "max_cost_usd")
        if name in given
    }
    params = {name: given[name] for name in ("max_tokens", "temperature", "top_p") if name in given}
    if params:
        fields["params"] = params
    if "variables" in given:
        fields["variables"] = parse_variables(form["variables"])
    if given.get("gate") == "on":
        fields["validation"] = {}  # the default release gate: a report for the viewer
    return fields


def _problems(exc: ValidationError) -> list[str]:
    """Pydantic's errors as ``field: message`` lines, without the input echoed back."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "params")
        lines.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    return lines or ["invalid job"]


@router.post("")
async def submit_job(
    request: Request,
    user: ConsoleUser,
    _csrf: CsrfChecked,
    template: Annotated[str, Form(max_length=200)] = "",
    count: Annotated[str, Form(max_length=20)] = "",
    model: Annotated[str, Form(max_length=200)] = "",
    max_tokens: Annotated[str, Form(max_length=20)] = "",
    temperature: Annotated[str, Form(max_length=20)] = "",
    top_p: Annotated[str, Form(max_length=20)] = "",
    seed: Annotated[str, Form(max_length=20)] = "",
    format: Annotated[str, Form(max_length=20)] = "jsonl",  # noqa: A002
    max_cost_usd: Annotated[str, Form(max_length=30)] = "",
    variables: Annotated[str, Form(max_length=2 * MAX_VARIABLES)] = "",  # every break a CRLF
    gate: Annotated[str, Form(max_length=10)] = "",
    idempotency_key: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    """Submit a template or recipe job; a bad field re-renders the form with the message."""
    variables = variables.replace("\r\n", "\n")
    form = {
        "template": template,
        "count": count,
        "model": model,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "seed": seed,
        "format": format,
        "max_cost_usd": max_cost_usd,
        "variables": variables,
        "gate": gate,
    }
    try:
        if len(variables) > MAX_VARIABLES:
            raise InvalidInput(f"variables: at most {MAX_VARIABLES:,} characters")
        spec = JobSpec.model_validate(spec_fields(form))
        view = await run_in_threadpool(
            _jobs(request).submit, _owner(user), spec, idempotency_key=idempotency_key or None
        )
    except ValidationError as exc:
        return await _list_page(request, user, form=form, errors=_problems(exc), status_code=422)
    except (InvalidInput, Conflict, QuotaExceeded) as exc:
        # A form's bad field is 422 (an unknown model too, which the API answers 404: here the
        # page exists, its input is wrong); a spending cap keeps its 429.
        code = 422 if isinstance(exc, InvalidInput) else exc.http_status
        message = public_message(exc)  # an unavailable model's reason is the admins'
        return await _list_page(request, user, form=form, errors=[message], status_code=code)
    return redirect(request, f"/console/jobs/{view.id}")


# -- live progress -------------------------------------------------------------------------------
def _snapshot(jobs: JobService, owner: Owner, job_id: str | None) -> list[tuple[JobView, bool]]:
    """The jobs to tell of, each with whether it will change no more (known of one job)."""
    if job_id is not None:
        return [jobs.watched_status(owner, job_id)]
    return [(view, False) for view in jobs.list(owner, LIST_LIMIT)]


def _session_owner(auth: AuthService, token: str) -> Owner | None:
    """The owner the session stands for now; None once it has ended."""
    try:
        return _owner(auth.console_session(token))
    except AuthError:
        return None


async def progress_events(
    request: Request, owner: Owner, job_id: str | None
) -> AsyncIterator[dict[str, Any]]:
    """``progress`` events of the jobs whose state or progress changed since the last poll."""
    jobs = _jobs(request)
    auth: AuthService = request.app.state.auth
    token = request.cookies.get(SESSION_COOKIE, "")
    loop = asyncio.get_running_loop()
    checked = loop.time()
    started = loop.time()
    sent: dict[str, str] = {}
    first = True
    while True:
        try:
            snapshot = await run_in_threadpool(_snapshot, jobs, owner, job_id)
        except (NotFound, ServiceUnavailable):
            return  # the job is gone, or the database is away: the browser reconnects later
        over = False
        if job_id is None:
            # A job the list showed that is no longer among its latest (deleted, purged, or
            # passed by newer ones, as a reload shows): its row goes, rather than linking a 404.
            listed = {view.id for view, _ in snapshot}
            for gone in [known for known in sent if known not in listed]:
                del sent[gone]
                yield {"event": "gone", "data": json.dumps({"id": gone})}
        for view, settled in snapshot:
            live = progress(view)
            if job_id is not None:  # the page closes its stream once this is true
                over = live["settled"] = settled or _waited_out(view, loop.time() - started)
            data = json.dumps(live)
            if sent.get(view.id) != data:
                sent[view.id] = data
                event: dict[str, Any] = {"event": "progress", "data": data}
                if first:
                    event["retry"] = RETRY_MS
                    first = False
                yield event
        if over:
            return  # one job's stream: nothing will change any more
        await asyncio.sleep(POLL_S)
        if loop.time() - checked >= SESSION_CHECK_S:
            if await run_in_threadpool(_session_owner, auth, token) != owner:
                return  # logged out or another role: the reconnect starts as the user is now
            checked = loop.time()


def _waited_out(view: JobView, waited_s: float) -> bool:
    """An ended job whose worker never let it go (it died): its page stops waiting."""
    return view.state in TERMINAL_STATES and waited_s > SETTLE_WAIT_S


@router.get("/events")
async def job_events(request: Request, user: ConsoleUser, job: str | None = None) -> Response:
    """Server-Sent Events of the user's jobs (``?job=<id>``: of that job only)."""
    owner = _owner(user)
    if job is not None:
        await run_in_threadpool(_jobs(request).status, owner, job)  # 404 before the stream
    streams: OpenSockets = request.app.state.open_event_streams
    release = streams.hold(owner.id)  # 429 past the user's bound
    return EventSourceResponse(
        _released(progress_events(request, owner, job), release),
        sep="\n",
        ping=PING_S,
        headers={"X-Accel-Buffering": "no"},  # a buffering proxy would hold the events back
        background=BackgroundTask(release),  # also when the stream never started
    )


async def _released(
    events: AsyncIterator[dict[str, Any]], release: Callable[[], None]
) -> AsyncIterator[dict[str, Any]]:
    try:
        async for event in events:
            yield event
    finally:
        release()


# -- one job ---------------------------------------------------------------------------------------
def _job_details(jobs: JobService, owner: Owner, job_id: str) -> tuple[JobView, dict[str, Any]]:
    return jobs.status(owner, job_id), jobs.spec(owner, job_id)


def usd_text(amount: float) -> str:
    """Dollars as the admin page and the CLI show a cap: four decimals, more when a sub-cent
    amount would read as zero ($0.004 was "0.00"); trailing zeros past four dropped."""
    text = f"{amount:.4f}"
    if amount and float(text) != amount:
        text = f"{amount:.12f}".rstrip("0").removesuffix(".")
    return text


def cost_text(view: JobView) -> str:
    """A job's cost: None is "no price" only once records were stored without one; before any
    record is stored a priced job has none yet either (one its cap refused said "no price")."""
    if view.cost_usd is not None:
        return f"{view.cost_usd:.6f}"
    stored = view.progress.done + view.progress.failed
    return "no price" if stored else "none recorded"


@router.get("/{job_id}")
async def job_page(job_id: str, request: Request, user: ConsoleUser) -> Response:
    view, spec = await run_in_threadpool(_job_details, _jobs(request), _owner(user), job_id)
    settings = request.app.state.settings
    context = {
        "job": view,
        "live": progress(view),
        "spec_json": json.dumps(spec, indent=2, ensure_ascii=False, sort_keys=True),
        "cost_text": cost_text(view),
        "cap_text": "none" if view.max_cost_usd is None else usd_text(view.max_cost_usd),
        "terminal": view.state in TERMINAL_STATES,
        # The worker gave up after the queue's last receive: the message is in the DLQ.
        "dead_lettered": view.state == "failed" and view.attempts >= settings.queue.max_receives,
    }
    return page(request, "job.html", context, user=user)


@router.post("/{job_id}/cancel")
async def cancel_job(
    job_id: str, request: Request, user: ConsoleUser, _csrf: CsrfChecked
) -> Response:
    """Cancel a queued or running job (409 for one that has ended)."""
    await run_in_threadpool(_jobs(request).cancel, _owner(user), job_id)
    return redirect(request, f"/console/jobs/{job_id}")


@router.post("/{job_id}/delete")
async def delete_job(
    job_id: str, request: Request, user: ConsoleUser, _csrf: CsrfChecked
) -> Response:
    """Delete an ended job with its records and files (409 while it is queued or running)."""
    await run_in_threadpool(_jobs(request).delete, _owner(user), job_id)
    return redirect(request, "/console/jobs")


@router.get("/{job_id}/download")
async def download_results(job_id: str, request: Request, user: ConsoleUser) -> Response:
    """The result file, as ``GET /api/v1/generate/status/{id}/results`` gives it."""
    jobs = _jobs(request)
    result = await run_in_threadpool(jobs.results, _owner(user), job_id)
    return result_response(jobs, result, job_id)
