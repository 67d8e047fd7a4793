"""The RFC 3339 dates and date-times a typed column holds exactly, as regular
expressions both Python's ``re`` and PostgreSQL's ``~`` read the same way.

JSON Schema's ``date`` and ``date-time`` formats admit year 0 and any number of
fractional digits; timestamp[us] and date32 columns (through Python's dates)
hold years 1 to 9999 and microseconds. Trailing zeros past the sixth digit are
exact, so they are admitted. Groups: year, month, day (then hour, minute,
second, fraction, zone, offset sign, hours, minutes).
"""

from __future__ import annotations

YEAR = "(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
DATE = f"^{YEAR}-([0-9]{{2}})-([0-9]{{2}})$"
DATE_TIME = (
    f"^{YEAR}-([0-9]{{2}})-([0-9]{{2}})[Tt]([0-9]{{2}}):([0-9]{{2}}):([0-5][0-9])"
    "(?:[.]([0-9]{1,6})0*)?([Zz]|([+-])([0-9]{2}):([0-9]{2}))$"
)
