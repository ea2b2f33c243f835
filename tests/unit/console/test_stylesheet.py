"""The stylesheet's colours meet WCAG 2.2: the focus outline (1.4.11, non-text contrast: 3:1)
against each background a focused control sits on."""

from __future__ import annotations

import re

import pytest

from textnlp.api.console.render import STATIC


def variables() -> dict[str, str]:
    """``--name`` -> ``#rrggbb`` of the stylesheet's ``:root``."""
    css = (STATIC / "console.css").read_text()
    return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})\b", css))


def luminance(colour: str) -> float:
    """WCAG's relative luminance of ``#rrggbb``."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    darker, lighter = sorted((luminance(one), luminance(other)))
    return (lighter + 0.05) / (darker + 0.05)


def test_the_contrast_formula_matches_wcags_reference_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)


@pytest.mark.parametrize("background", ["bg", "panel"])
def test_the_focus_outline_stands_out_from_the_backgrounds(background: str) -> None:
    # #f0a500 was 2.08:1 on white and 1.91:1 on the panels' grey.
    colours = variables()
    ratio = contrast(colours["focus"], colours[background])
    assert ratio >= 3.0, f"--focus on --{background}: {ratio:.2f}:1"
