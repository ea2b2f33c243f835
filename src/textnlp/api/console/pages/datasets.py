"""The dataset viewer: a job's records and its validation report.

``GET /console/jobs/{id}/records`` pages through the records (50 a page), filtered by status,
label, failure reason and text, each with its provenance; ``GET /console/jobs/{id}/report``
shows the report the job's validation gate wrote. Both call ``JobService`` with the logged-in
user as the ``Owner``, as the API's job routes do: another user's job answers 404.

Paging (``services.job_records``): without a payload filter by position (``?page=``, or
``?offset=``), with one by cursor (``?after=<index>``), so that a search stops after a page of
matches. The filter form and the pager are plain GET links and forms; htmx (``hx-boost``)
swaps only the records and pushes the URL, and the server answers such a request with the
records fragment alone (a history restore, which wants the whole page, gets the page).

The report is drawn here from its JSON, not embedded: the standalone HTML report
(``textnlp.validation.html``) carries inline styles and SVG the console's CSP refuses. Its plots
are SVG images as ``data:`` URIs (the CSP allows them; an SVG image runs no script).
"""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from textnlp.api.console.render import is_htmx, page
from textnlp.api.console.session import ConsoleUser
from textnlp.auth.service import Principal
from textnlp.domain import Record
from textnlp.errors import InvalidInput, first_error
from textnlp.services.job_models import Owner
from textnlp.services.job_records import (
    MAX_FILTER_LENGTH,
    PAGE_SIZE,
    JobReport,
    RecordPage,
    RecordQuery,
    label_text,
)
from textnlp.services.jobs import JobService
from textnlp.validation.models import DatasetReport

router = APIRouter(prefix="/jobs")

#: Texts longer than this (characters or lines) show a preview and fold the rest.
FOLD_CHARS, FOLD_LINES, PREVIEW_CHARS = 600, 12, 280
#: Label suggestions offered by the filter form (from the page's records).
MAX_SUGGESTIONS = 40
FilterText = Annotated[str | None, Query(max_length=MAX_FILTER_LENGTH)]


def _jobs(request: Request) -> JobService:
    service: JobService = request.app.state.jobs
    return service


def _owner(user: Principal) -> Owner:
    return Owner(id=str(user.id), is_admin=bool(user.is_admin))


# -- records -------------------------------------------------------------------------------------
def folded(text: str) -> bool:
    return len(text) > FOLD_CHARS or text.count("\n") >= FOLD_LINES


@dataclass(frozen=True)
class RecordView:
    """What the viewer shows of a record, prepared here once: the template only places it
    (a page of 50 records renders in about a millisecond)."""

    record: Record
    labels: list[tuple[str, str]]
    folded: bool
    #: Model, seed, tokens, latency and cost in one line.
    meta: str
    #: The provenance as indented JSON (without the cells where a table shows them).
    provenance: str


def record_view(record: Record) -> RecordView:
    p = record.provenance
    cost = f"${p.cost_usd:.6f}" if p.cost_usd is not None else "no price"
    meta = (
        f"{p.model} · seed {p.seed} · {p.prompt_tokens} + {p.completion_tokens} tokens · "
        f"{p.latency_s:.3f} s · {cost}{' · cached' if p.cached else ''}"
    )
    return RecordView(
        record,
        [(name, label_text(value)) for name, value in record.variables.items()],
        folded(record.text),
        meta,
        p.model_dump_json(indent=2, exclude={"cells"} if p.cells else None),
    )


def suggestions(records_page: RecordPage) -> list[str]:
    """``name=value`` labels of the page's records, for the label field's list."""
    seen: dict[str, None] = {}
    for record in records_page.records:
        for name, value in record.variables.items():
            text = f"{name}={label_text(value)}"
            if len(text) <= MAX_FILTER_LENGTH:
                seen.setdefault(text)
            if len(seen) >= MAX_SUGGESTIONS:
                return list(seen)
    return list(seen)


def pager(base: str, found: RecordPage) -> dict[str, str | None]:
    """The links of the page's pager (None: no such page)."""
    params = found.query.params()

    def url(**paging: int) -> str:
        return f"{base}?{urlencode({**params, **paging})}" if params or paging else base

    if found.by_cursor:
        return {
            "first": url() if found.after is not None and found.after >= 0 else None,
            "previous": None,
            "next": url(after=found.next_after)
            if found.has_more and found.next_after is not None
            else None,
        }
    offset = found.offset or 0

    def at(position: int) -> str:
        if position <= 0:
            return url()
        if position % found.limit == 0:
            return url(page=position // found.limit + 1)
        return url(offset=position)

    return {
        "first": url() if offset > 0 else None,
        "previous": at(offset - found.limit) if offset > 0 else None,
        "next": at(offset + found.limit) if found.has_more else None,
    }


def summary(found: RecordPage) -> str:
    """What the page shows, in words (the live region's text)."""
    count = len(found.records)
    matching = "matching " if found.query.params() else ""
    if found.source is None:
        return "This job has no stored records yet."
    if not count:
        where = f" up to record #{found.scanned_to}" if found.scanned_to is not None else ""
        return f"No {matching}records found{where}."
    if found.by_cursor:
        start = "" if found.after is None or found.after < 0 else f" after record #{found.after}"
        noun = "record" if count == 1 else "records"
        return f"Showing {count} {matching}{noun}{start}."
    first = (found.offset or 0) + 1
    return f"Showing {matching}records {first}–{first + count - 1}."


def _query(
    status: str | None, label: str | None, reason: str | None, search: str | None
) -> RecordQuery:
    try:
        return RecordQuery(status=status, label=label, reason=reason, search=search)
    except ValidationError as exc:
        raise InvalidInput(first_error(exc)) from None


@router.get("/{job_id}/records")
async def records_page(
    job_id: str,
    request: Request,
    user: ConsoleUser,
    page_number: Annotated[int | None, Query(alias="page", ge=1, le=10_000_000)] = None,
    offset: Annotated[int | None, Query(ge=0, le=500_000_000)] = None,
    after: Annotated[int | None, Query(ge=-1, le=2**31 - 1)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    label: FilterText = None,
    reason: FilterText = None,
    search: FilterText = None,
) -> Response:
    query = _query(status, label, reason, search)
    start = (page_number - 1) * PAGE_SIZE if page_number is not None else offset or 0
    jobs, owner = _jobs(request), _owner(user)

    found = await run_in_threadpool(
        lambda: jobs.records_page(owner, job_id, query, offset=start, after=after)
    )
    job = found.job
    assert job is not None
    base = f"/console/jobs/{job.id}/records"
    context = {
        "job": job,
        "found": found,
        "views": [record_view(r) for r in found.records],
        "query": query,
        "base": base,
        "links": pager(base, found),
        "summary": summary(found),
        "suggestions": suggestions(found),
        "preview_chars": PREVIEW_CHARS,
    }
    restoring = request.headers.get("hx-history-restore-request") == "true"
    if is_htmx(request) and not restoring:
        return page(request, "records_list.html", {**context, "fragment": True}, user=user)
    return page(request, "records.html", context, user=user)


# -- report --------------------------------------------------------------------------------------
class _PlotCache:
    """The last few reports' plots (drawing them takes matplotlib a few hundred ms)."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.items: OrderedDict[str, list[dict[str, str]]] = OrderedDict()
        self.lock = Lock()

    def get(self, key: str, draw: Callable[[], list[dict[str, str]]]) -> list[dict[str, str]]:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        plots = draw()
        with self.lock:
            self.items[key] = plots
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return plots


_PLOTS = _PlotCache()


def _svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def draw_plots(report: DatasetReport) -> list[dict[str, str]]:
    """The standalone report's plots, each a ``data:`` URI with its title as alt text."""
    from textnlp.validation.plots import bars_svg, histogram_svg

    plots: list[tuple[str, str]] = []
    title = "Length distribution (words per text)"
    plots.append(
        (title, histogram_svg(report.words.histogram, title=title, xlabel="words per text"))
    )
    for stats in report.labels[:4]:
        if stats.distribution:
            title = f"Label distribution: {stats.name}"
            plots.append((title, bars_svg(stats.distribution, title=title)))
    near = report.near_duplicates
    if near.top:
        sizes = {f"#{i + 1} ({c.indices[0]}…)": c.size for i, c in enumerate(near.top)}
        title = f"Near-duplicate clusters (size, {near.clusters} clusters)"
        plots.append((title, bars_svg(sizes, title=title, color="#c44e52")))
    if report.diversity.nearest_neighbour_similarity:
        title = "Similarity to nearest other record (MiniLM cosine)"
        hist = report.diversity.nearest_neighbour_similarity
        plots.append((title, histogram_svg(hist, title=title, xlabel="cosine", color="#8172b3")))
    if report.leakage and report.leakage.reference_similarity:
        title = "Similarity to closest reference"
        hist = report.leakage.reference_similarity
        plots.append((title, histogram_svg(hist, title=title, xlabel="cosine", color="#937860")))
    return [{"title": t, "src": _svg_uri(svg)} for t, svg in plots]


def report_context(found: JobReport) -> dict[str, Any]:
    report = found.report
    if report is None:
        return {"found": found, "report": None}
    from textnlp.validation.html import _extra_summary, _field_values, _num

    digest = hashlib.sha256(report.model_dump_json().encode()).hexdigest()
    return {
        "found": found,
        "report": report,
        # The standalone report's own helpers: both show the same figures.
        "extra_summary": _extra_summary(report),
        "field_values": _field_values,
        "num": _num,
        "plots": _PLOTS.get(digest, lambda: draw_plots(report)),
        "folded": folded,
        "preview_chars": PREVIEW_CHARS,
    }


@router.get("/{job_id}/report")
async def report_page(job_id: str, request: Request, user: ConsoleUser) -> Response:
    jobs, owner = _jobs(request), _owner(user)

    def read() -> dict[str, Any]:
        return report_context(jobs.validation_report(owner, job_id))

    context = await run_in_threadpool(read)
    return page(request, "report.html", context, user=user)
