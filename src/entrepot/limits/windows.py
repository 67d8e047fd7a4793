"""Quota windows: UTC calendar days and months, named so every replica agrees."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class Window:
    name: str  # "2026-12-01" or "2026-12": part of the counter's key
    start: datetime
    end: datetime

    def seconds_left(self, now: float) -> int:
        """Whole seconds from ``now`` (a Unix time) to the window's end, at least one."""
        return max(1, math.ceil(self.end.timestamp() - now))


def day_of(now: datetime) -> Window:
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(start.strftime("%Y-%m-%d"), start, start + timedelta(days=1))


def month_of(now: datetime) -> Window:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        end = start.replace(year=start.year + 1, month=1)
    else:
        end = start.replace(month=start.month + 1)
    return Window(start.strftime("%Y-%m"), start, end)


class Calendar:
    """Today's and this month's windows, recomputed only when the day turns (hot path)."""

    def __init__(self) -> None:
        self._windows: tuple[Window, Window] | None = None
        self._until = -math.inf

    def current(self, now: float | None = None) -> tuple[Window, Window]:
        now = time.time() if now is None else now
        if self._windows is None or now >= self._until or now < self._until - 86_400:
            moment = datetime.fromtimestamp(now, UTC)
            self._windows = (day_of(moment), month_of(moment))
            self._until = self._windows[0].end.timestamp()
        return self._windows
