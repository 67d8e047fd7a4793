"""Quota windows: UTC calendar days and months, named so every replica agrees."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class Window:
    name: str  # "2026-12-01" or "2026-12": part of the counter's key
    start: datetime
    end: datetime

    def seconds_left(self, now: datetime) -> int:
        return max(1, math.ceil((self.end - now).total_seconds()))


def day_of(now: datetime) -> Window:
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(start.strftime("%Y-%m-%d"), start, start + timedelta(days=1))


def month_of(now: datetime) -> Window:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return Window(start.strftime("%Y-%m"), start, end)
