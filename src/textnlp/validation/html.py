"""The report as one self-contained HTML page: inline CSS, inline SVG plots, no scripts.

The page is ``templates/report.html.j2`` (Jinja2, autoescaped: every text of a record is
escaped; only the plots' SVG, drawn here, is marked safe). This module prepares what the
template shows.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from textnlp.validation.models import STATUS_STYLES, DatasetReport, FieldStats
from textnlp.validation.plots import bars_svg, histogram_svg


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("textnlp.validation", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["num"] = _num
    environment.filters["field_values"] = _field_values
    return environment.get_template("report.html.j2")


def render_html(report: DatasetReport) -> str:
    """The report as a standalone HTML document."""
    return _template().render(
        report=report,
        styles=STATUS_STYLES,
        extra_summary=_extra_summary(report),
        plots=_plots(report),
    )


def _extra_summary(report: DatasetReport) -> list[tuple[str, str]]:
    q, d = report.quality, report.diversity
    return [
        (
            "words per text (mean / median / p95)",
            f"{report.words.mean:.1f} / {report.words.median:.0f} / {report.words.p95:.0f}",
        ),
        (
            "distinct-1 / -2 / -3 (sample)",
            " / ".join(_num(v) for v in (d.distinct_1, d.distinct_2, d.distinct_3)),
        ),
        ("semantic clusters (sample)", _num(d.semantic_clusters)),
        ("Flesch reading ease (sample mean)", _num(q.mean_flesch_reading_ease)),
        ("languages (sample)", ", ".join(f"{k}: {v}" for k, v in q.languages.items())),
        ("PII by kind", ", ".join(f"{k}: {v}" for k, v in report.pii.by_kind.items()) or "none"),
        *_acceptance(report.generation),
    ]


def _acceptance(generation: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A recipe run's candidates and each filter's pass rate."""
    if not generation or "candidates" not in generation:
        return []
    rows = [
        ("candidates (generation)", str(generation["candidates"])),
        ("acceptance rate (generation)", f"{generation['acceptance_rate']:.1%}"),
    ]
    for name, rate in generation.get("pass_rate_per_filter", {}).items():
        rejected = generation.get("rejected", {}).get(name, 0)
        rows.append((f"filter {name} pass rate", f"{rate:.1%} ({rejected} rejected)"))
    return rows


def _field_values(s: FieldStats) -> str:
    if s.distribution is not None:
        return ", ".join(f"{k}: {v}" for k, v in s.distribution.items())
    if s.numeric is not None:
        return f"min {s.numeric.min:g}, mean {s.numeric.mean:.3g}, max {s.numeric.max:g}"
    return f"mean length {s.mean_length or 0:.1f} characters"


def _plots(report: DatasetReport) -> list[str]:
    plots = [
        histogram_svg(report.words.histogram, title="Length distribution", xlabel="words per text")
    ]
    for stats in report.labels[:4]:
        if stats.distribution:
            plots.append(bars_svg(stats.distribution, title=f"Label distribution: {stats.name}"))
    near = report.near_duplicates
    if near.top:
        sizes = {f"#{i + 1} ({c.indices[0]}…)": c.size for i, c in enumerate(near.top)}
        plots.append(
            bars_svg(
                sizes,
                title=f"Near-duplicate clusters (size, {near.clusters} clusters)",
                color="#c44e52",
            )
        )
    if report.diversity.nearest_neighbour_similarity:
        plots.append(
            histogram_svg(
                report.diversity.nearest_neighbour_similarity,
                title="Similarity to nearest other record (MiniLM cosine)",
                xlabel="cosine",
                color="#8172b3",
            )
        )
    if report.leakage and report.leakage.reference_similarity:
        plots.append(
            histogram_svg(
                report.leakage.reference_similarity,
                title="Similarity to closest reference",
                xlabel="cosine",
                color="#937860",
            )
        )
    return plots


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"
