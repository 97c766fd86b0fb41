"""The dashboard's colours: text and controls keep a contrast of 4.5:1 (WCAG AA) or more on the
backgrounds they are drawn on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import shortener.http.dashboard

STYLE = Path(shortener.http.dashboard.__file__).parent / "static" / "dashboard.css"
WHITE = "#ffffff"
# (foreground, background) pairs the style sheet draws.
PAIRS = [
    ("ink", "paper"),
    ("ink", "wash"),
    ("muted", "paper"),
    ("muted", "wash"),
    ("accent", "paper"),
    ("accent", "wash"),
    ("clicks", "paper"),
    ("opens", "paper"),
    ("bots", "paper"),
    ("danger", "paper"),
]


def colours() -> dict[str, str]:
    return dict(re.findall(r"--([a-z]+):\s*(#[0-9a-f]{6})", STYLE.read_text()))


def luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    lighter, darker = sorted((luminance(one), luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.mark.parametrize(("foreground", "background"), PAIRS)
def test_text_is_legible(foreground: str, background: str) -> None:
    palette = colours()
    assert contrast(palette[foreground], palette[background]) >= 4.5


@pytest.mark.parametrize("button", ["accent", "danger"])
def test_button_labels_are_legible(button: str) -> None:
    assert contrast(WHITE, colours()[button]) >= 4.5


def test_the_contrast_formula() -> None:
    assert contrast("#000000", WHITE) == pytest.approx(21)
    assert contrast(WHITE, WHITE) == pytest.approx(1)
