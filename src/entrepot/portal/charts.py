"""Usage charts drawn on the server as SVG: no script, no CDN, readable without
JavaScript, and a table of the same figures beside them for screen readers.

One bar per period (hours of the last day), its height the requests counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

WIDTH, HEIGHT = 720, 200
LEFT, BOTTOM, TOP = 48, 28, 12


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    total: int
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = HEIGHT - BOTTOM
    top: int = TOP

    @property
    def ticks(self) -> list[Bar]:
        """Every fourth bar's label under the axis (hours would crowd it)."""
        return self.bars[::4]


def hourly(report: dict[str, Any]) -> Chart:
    """The report's counts summed per period, every hour of its window present."""
    start: datetime = report["start"]
    end: datetime = report["end"]
    counts: dict[datetime, int] = {}
    for row in report["data"]:
        counts[row["period"]] = counts.get(row["period"], 0) + int(row["count"])
    periods = []
    moment = start
    while moment < end:
        periods.append(moment)
        moment += timedelta(hours=1)
    peak = max(counts.values(), default=0)
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(periods), 1)
    bars = []
    for i, period in enumerate(periods):
        count = counts.get(period, 0)
        height = (count / peak * plot_h) if peak else 0.0
        bars.append(
            Bar(
                label=period.strftime("%H:00"),
                count=count,
                x=round(LEFT + i * step + 1, 1),
                y=round(HEIGHT - BOTTOM - height, 1),
                width=round(max(step - 2, 1), 1),
                height=round(height, 1),
            )
        )
    return Chart(bars, int(report["total"]), peak)
