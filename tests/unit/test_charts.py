"""The dashboard's SVG chart geometry: every value inside the plot, in proportion, with round
counts on the axis and dates that do not crowd each other."""

from __future__ import annotations

import pytest

from shortener.http.dashboard import charts


@pytest.mark.parametrize(
    ("highest", "top"),
    [(0, 4), (1, 4), (4, 4), (5, 8), (37, 40), (101, 200), (999, 1000), (1001, 2000)],
)
def test_the_count_axis_ends_on_a_round_number_above_the_highest(highest: int, top: int) -> None:
    chart = charts.line_chart("t", ["a"], [charts.Line("x", "clicks", [highest])])
    labels = [tick.text for tick in chart.count_ticks]
    assert labels[0] == "0"
    assert labels[-1] == f"{top:,}"
    assert len(labels) == charts.COUNT_TICKS + 1


def test_points_lie_in_the_plot_in_proportion() -> None:
    values = [0, 5, 10, 20]
    chart = charts.line_chart("t", ["a", "b", "c", "d"], [charts.Line("x", "clicks", values)])
    (line,) = chart.lines
    assert [point.value for point in line.points] == values
    xs = [point.x for point in line.points]
    assert xs == sorted(xs)
    assert all(chart.left < x < chart.right for x in xs)
    assert all(chart.top <= point.y <= chart.bottom for point in line.points)
    # Zero on the axis; twice the count, twice the height.
    assert line.points[0].y == chart.bottom
    height = [chart.bottom - point.y for point in line.points]
    assert height[3] == pytest.approx(2 * height[2])
    assert line.path.count(",") == len(values)


def test_bars_one_per_label_and_time_labels_thinned() -> None:
    labels = [f"day {n}" for n in range(30)]
    chart = charts.bar_chart("t", labels, list(range(30)))
    assert len(chart.bars) == 30
    assert all(bar.width > 0 and bar.y + bar.height == chart.bottom for bar in chart.bars)
    assert len(chart.time_ticks) <= charts.MAX_TIME_LABELS
    assert chart.time_ticks[0].text == "day 0"


def test_no_values_draw_an_empty_chart() -> None:
    chart = charts.bar_chart("t", [], [])
    assert chart.bars == [] and chart.time_ticks == []
    assert [tick.text for tick in chart.count_ticks][-1] == "4"
