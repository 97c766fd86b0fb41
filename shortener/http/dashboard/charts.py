"""Charts drawn on the server as SVG: the geometry of a line or bar chart, which a template
turns into elements. Nothing runs in the browser, and every chart's numbers are also given as
a table beside it, its text alternative."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 720
HEIGHT = 260
# Room for the axes' labels: left for counts, below for dates.
LEFT = 52
RIGHT = 12
TOP = 12
BOTTOM = 44
# At most this many labels along the time axis, so that they never overlap.
MAX_TIME_LABELS = 6
COUNT_TICKS = 4


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    # A CSS class of the dashboard's style sheet: the line's colour, also in the legend.
    css: str
    values: Sequence[int]


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    value: int
    label: str


@dataclass(frozen=True, slots=True)
class DrawnLine:
    name: str
    css: str
    points: list[Point]

    @property
    def path(self) -> str:
        return " ".join(f"{point.x:.1f},{point.y:.1f}" for point in self.points)


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    time_ticks: list[Tick]
    count_ticks: list[Tick]
    lines: list[DrawnLine]
    bars: list[Bar]

    @property
    def bottom(self) -> int:
        return self.top + self.plot_height

    @property
    def right(self) -> int:
        return self.left + self.plot_width


def _count_ticks(highest: int) -> tuple[int, list[int]]:
    """A round top for the count axis, and the counts to label on it: whole steps of 1, 2, 2.5
    or 5 times a power of ten, the smallest whose COUNT_TICKS steps reach the highest count."""
    top = max(highest, COUNT_TICKS)
    power = 1
    while True:
        for step in (power, 2 * power, 5 * power // 2, 5 * power):
            if step * COUNT_TICKS >= top:
                return step * COUNT_TICKS, [step * n for n in range(COUNT_TICKS + 1)]
        power *= 10


def _frame(title: str, labels: Sequence[str], highest: int, slots: int) -> tuple[Chart, int]:
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top, counts = _count_ticks(highest)
    every = max(1, -(-len(labels) // MAX_TIME_LABELS))
    slot = plot_width / max(slots, 1)
    time_ticks = [
        Tick(LEFT + slot * (index + 0.5), label)
        for index, label in enumerate(labels)
        if index % every == 0
    ]
    count_ticks = [
        Tick(TOP + plot_height - plot_height * count / top, f"{count:,}") for count in counts
    ]
    chart = Chart(
        title, WIDTH, HEIGHT, LEFT, TOP, plot_width, plot_height, time_ticks, count_ticks, [], []
    )
    return chart, top


def line_chart(title: str, labels: Sequence[str], lines: Sequence[Line]) -> Chart:
    """One point per label for each line, joined; `labels` name the buckets in order."""
    highest = max((max(line.values, default=0) for line in lines), default=0)
    chart, top = _frame(title, labels, highest, len(labels))
    slot = chart.plot_width / max(len(labels), 1)
    for line in lines:
        points = [
            Point(
                chart.left + slot * (index + 0.5),
                chart.bottom - chart.plot_height * value / top,
                value,
                labels[index],
            )
            for index, value in enumerate(line.values)
        ]
        chart.lines.append(DrawnLine(line.name, line.css, points))
    return chart


def bar_chart(title: str, labels: Sequence[str], values: Sequence[int]) -> Chart:
    """One bar per label."""
    chart, top = _frame(title, labels, max(values, default=0), len(labels))
    slot = chart.plot_width / max(len(labels), 1)
    for index, value in enumerate(values):
        height = chart.plot_height * value / top
        chart.bars.append(
            Bar(
                chart.left + slot * index + slot * 0.15,
                chart.bottom - height,
                slot * 0.7,
                height,
                value,
                labels[index],
            )
        )
    return chart
