"""Charts drawn on the server as SVG: axes, labels, a legend, and a marker shape and dash pattern
per series, so a chart reads without colour and without any script."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 56
STYLES = (("circle", ""), ("square", "6 4"), ("triangle", "2 3"))
"""Per series: the marker shape and the stroke dash pattern."""


@dataclass(frozen=True, slots=True)
class Series:
    """One line: its name, the points and how it is drawn."""

    name: str
    css: str
    marker: str
    dash: str
    points: tuple[tuple[float, float, int], ...]
    """(x, y, value) per week."""


@dataclass(frozen=True, slots=True)
class Chart:
    """Everything the template needs to draw a line chart."""

    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    y_ticks: tuple[tuple[float, int], ...]
    x_labels: tuple[tuple[float, str], ...]
    series: tuple[Series, ...]
    summary: str


def _nice_top(value: int) -> int:
    """A round axis maximum at or above `value` (1, 2, 5 × 10^n)."""
    if value <= 5:
        return 5
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor * 5 >= value:
                return step * factor * 5
        step *= 10


def line_chart(
    weeks: Sequence[str], values: Mapping[str, Sequence[int]], title: str, *, max_labels: int = 12
) -> Chart:
    """A line chart of counts per week, one series per entry of `values` (in order)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_top(max((max(v, default=0) for v in values.values()), default=0))
    n = len(weeks)

    def x(i: int) -> float:
        return round(LEFT + (plot_w / 2 if n == 1 else plot_w * i / (n - 1)), 1)

    def y(v: int) -> float:
        return round(TOP + plot_h - plot_h * v / top, 1)

    every = max(1, -(-n // max_labels))
    series = tuple(
        Series(
            name=name,
            css=f"series-{i}",
            marker=STYLES[i % len(STYLES)][0],
            dash=STYLES[i % len(STYLES)][1],
            points=tuple((x(j), y(v), v) for j, v in enumerate(counts)),
        )
        for i, (name, counts) in enumerate(values.items())
    )
    totals = ", ".join(f"{name} {sum(counts)}" for name, counts in values.items())
    span = f"{weeks[0]} to {weeks[-1]}" if weeks else "no weeks"
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        top=TOP,
        plot_width=plot_w,
        plot_height=plot_h,
        y_ticks=tuple((y(top * k // 5), top * k // 5) for k in range(6)),
        x_labels=tuple((x(i), week) for i, week in enumerate(weeks) if i % every == 0),
        series=series,
        summary=f"{title}, {span}: {totals}.",
    )
