"""The migration chart: users linked per day against those still to go, as coordinates for a server-rendered SVG."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 36


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: date
    count: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]  # linked that day (left axis)
    to_go: str  # polyline points: still flagged at the end of each day (right axis)
    to_go_last: int
    max_linked: int
    max_to_go: int
    first: date
    last: date
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int


def migration_chart(*, per_day: list[tuple[date, int]], to_go_now: int, today: date, days: int) -> Chart:
    """Bars of users linked each day over ``days`` up to ``today``; the line of those still to go after each day,
    worked back from today's figure (each link took one user off the list)."""
    counts = dict(per_day)
    first = today - timedelta(days=days - 1)
    span = [first + timedelta(days=i) for i in range(days)]
    linked = [counts.get(day, 0) for day in span]
    to_go, remaining = [], to_go_now
    for count in reversed(linked):
        to_go.append(remaining)
        remaining += count
    to_go.reverse()
    max_linked = max([1, *linked])
    max_to_go = max([1, *to_go])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / days
    bars = [
        Bar(
            x=round(LEFT + i * step + step * 0.15, 1),
            y=round(TOP + plot_h * (1 - count / max_linked), 1),
            width=round(step * 0.7, 1),
            height=round(plot_h * count / max_linked, 1),
            day=day,
            count=count,
        )
        for i, (day, count) in enumerate(zip(span, linked, strict=True))
    ]
    points = " ".join(
        f"{LEFT + (i + 0.5) * step:.1f},{TOP + plot_h * (1 - value / max_to_go):.1f}" for i, value in enumerate(to_go)
    )
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        to_go=points,
        to_go_last=to_go[-1] if to_go else to_go_now,
        max_linked=max_linked,
        max_to_go=max_to_go,
        first=first,
        last=today,
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        plot_top=TOP,
        plot_bottom=HEIGHT - BOTTOM,
    )
