"""The report as one self-contained HTML page: inline CSS, inline SVG plots, no scripts."""

# ruff: noqa: E501  - HTML markup reads better on one line than split across string pieces.

from __future__ import annotations

from html import escape

from textnlp.validation.models import STATUS_STYLES, DatasetReport, Example, FieldStats
from textnlp.validation.plots import bars_svg, histogram_svg

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{margin:28px 0 10px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.muted{color:#656d76}.badge{display:inline-block;padding:4px 12px;border-radius:14px;color:#fff;font-weight:600}
.pass{background:#1a7f37}.fail{background:#cf222e}.skipped{background:#9a6700}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eaeef2}td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:12px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:8px}
.card svg{width:100%;height:auto}.text{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap}
"""


def render_html(report: DatasetReport) -> str:
    """The report as a standalone HTML document."""
    verdict = "pass" if report.passed else "fail"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Validation report: {escape(report.source)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>Validation report</h1><p class='muted'>{escape(report.source)} · field "
        f"<code>{escape(report.field)}</code> · {report.count} records</p>",
        f"<p><span class='badge {verdict}'>gate {'passed' if report.passed else 'FAILED'}</span></p>",
        _gate(report),
        "<h2>Summary</h2>",
        _summary(report),
        "<h2>Plots</h2><div class='grid'>",
        *_plots(report),
        "</div>",
        _labels(report.labels, "Labels"),
        _labels(report.fields, "JSON fields"),
        _duplicates(report),
        _leakage(report),
        "<h2>Worst examples</h2>",
        *(_examples(name, items) for name, items in report.examples.items()),
        "" if report.examples else "<p class='muted'>No problem found.</p>",
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _gate(report: DatasetReport) -> str:
    rows = "".join(
        f"<tr><td>{escape(r.rule)}</td><td>{escape(r.description)}</td>"
        f"<td class='num'>{_num(r.value)}</td><td>{r.op} {_num(r.threshold)}</td>"
        f"<td><span class='badge {r.status}'>{r.status}</span></td></tr>"
        for r in report.gate.rules
    )
    return f"<h2>Release gate</h2><table><tr><th>rule</th><th>meaning</th><th>value</th><th>threshold</th><th>status</th></tr>{rows}</table>"


def _summary(report: DatasetReport) -> str:
    rows = "".join(
        f"<tr><td>{escape(metric)}</td><td class='num'>{escape(value)}</td>"
        f"<td style='color:{STATUS_STYLES.get(status, 'inherit')}'>{escape(status)}</td></tr>"
        for metric, value, status in report.summary_rows()
    )
    q, d = report.quality, report.diversity
    extra = [
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
    ]
    rows += "".join(
        f"<tr><td>{escape(k)}</td><td class='num'>{escape(v)}</td><td></td></tr>" for k, v in extra
    )
    return f"<table><tr><th>metric</th><th>value</th><th>gate</th></tr>{rows}</table>"


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
    return [f"<div class='card'>{svg}</div>" for svg in plots]


def _labels(stats: list[FieldStats], title: str) -> str:
    if not stats:
        return ""
    rows = []
    for s in stats:
        if s.distribution is not None:
            value = ", ".join(f"{escape(k)}: {v}" for k, v in s.distribution.items())
        elif s.numeric is not None:
            value = f"min {s.numeric.min:g}, mean {s.numeric.mean:.3g}, max {s.numeric.max:g}"
        else:
            value = f"mean length {s.mean_length or 0:.1f} characters"
        rows.append(
            f"<tr><td>{escape(s.name)}</td><td>{s.kind}</td><td class='num'>{s.present}</td><td>{value}</td></tr>"
        )
    return f"<h2>{title}</h2><table><tr><th>field</th><th>kind</th><th>present</th><th>values</th></tr>{''.join(rows)}</table>"


def _duplicates(report: DatasetReport) -> str:
    out = []
    for title, summary in (
        ("Exact duplicates", report.exact_duplicates),
        ("Near-duplicate clusters", report.near_duplicates),
    ):
        if not summary.top:
            continue
        rows = "".join(
            f"<tr><td class='num'>{c.size}</td><td>{escape(str(c.indices))}</td><td class='text'>{escape(c.text)}</td></tr>"
            for c in summary.top
        )
        out.append(
            f"<h2>{title}</h2><p class='muted'>{summary.clusters} clusters, {summary.redundant} redundant records ({summary.rate:.2%})</p>"
            f"<table><tr><th>size</th><th>records</th><th>text (first record)</th></tr>{rows}</table>"
        )
    return "".join(out)


def _leakage(report: DatasetReport) -> str:
    leak = report.leakage
    if leak is None:
        return ""
    rows = "".join(
        f"<tr><td class='num'>{m.index}</td><td class='num'>{m.reference_index}</td>"
        f"<td class='num'>{_num(m.ngram_jaccard)}</td><td class='num'>{_num(m.cosine)}</td></tr>"
        for m in leak.matches[:20]
    )
    return (
        f"<h2>Leakage</h2><p class='muted'>{leak.leaked} of {report.count} records ({leak.rate:.2%}) are close to one of "
        f"{leak.reference_count} references in {escape(leak.reference)} (3-gram Jaccard ≥ {leak.ngram_threshold}"
        f"{'' if leak.embedding_threshold is None else f' or cosine ≥ {leak.embedding_threshold}'}).</p>"
        + (
            f"<table><tr><th>record</th><th>reference</th><th>3-gram Jaccard</th><th>cosine</th></tr>{rows}</table>"
            if rows
            else ""
        )
    )


def _examples(name: str, items: list[Example]) -> str:
    rows = "".join(
        f"<tr><td class='num'>{e.index}</td><td>{escape(e.detail)}</td><td class='text'>{escape(e.text)}</td></tr>"
        for e in items
    )
    return f"<h3>{escape(name.replace('_', ' '))}</h3><table><tr><th>record</th><th>why</th><th>text</th></tr>{rows}</table>"


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"
