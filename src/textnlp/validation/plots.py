"""Plots of the HTML report as inline SVG (matplotlib, Agg backend; no files, no display)."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping

from textnlp.validation.models import Histogram


def _figure(width: float = 5.0, height: float = 2.6):  # type: ignore[no-untyped-def]
    # A bare Figure needs no pyplot and no GUI backend; savefig renders with Agg/SVG directly.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig.add_subplot(1, 1, 1)


def _svg(fig) -> str:  # type: ignore[no-untyped-def]
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    # Drop the XML prolog and the RDF metadata block (creator, date): the page stays small and
    # the same report renders to the same bytes.
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.find("<svg") :], flags=re.S)
    return text


def histogram_svg(hist: Histogram, *, title: str, xlabel: str, color: str = "#4c72b0") -> str:
    fig, ax = _figure()
    widths = [b - a for a, b in zip(hist.edges[:-1], hist.edges[1:], strict=True)]
    ax.bar(hist.edges[:-1], hist.counts, width=widths, align="edge", color=color, edgecolor="white")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("records", fontsize=9)
    return _svg(fig)


def bars_svg(counts: Mapping[str, int], *, title: str, color: str = "#55a868") -> str:
    items = list(counts.items())[:30]
    fig, ax = _figure(5.0, max(1.6, 0.28 * len(items) + 0.8))
    labels = [k if len(k) <= 30 else k[:29] + "…" for k, _ in items]
    ax.barh(range(len(items)), [v for _, v in items], color=color)
    ax.set_yticks(range(len(items)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    return _svg(fig)
