"""Quota windows and endpoint classes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from entrepot.limits.classes import CLASSES, endpoint_class
from entrepot.limits.windows import Calendar, day_of, month_of


def test_days_and_months_are_utc_calendar_windows() -> None:
    now = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)
    assert day_of(now).name == "2026-12-31"
    assert day_of(now).seconds_left(now.timestamp()) == 30
    assert month_of(now).name == "2026-12"
    assert month_of(now).end == datetime(2027, 1, 1, tzinfo=UTC)


def test_a_local_time_is_placed_in_its_utc_window() -> None:
    paris = timezone(timedelta(hours=1))
    now = datetime(2027, 3, 1, 0, 30, tzinfo=paris)  # still February in UTC
    assert day_of(now).name == "2027-02-28"
    assert month_of(now).name == "2027-02"


def test_seconds_left_is_never_zero() -> None:
    window = day_of(datetime(2026, 1, 1, tzinfo=UTC))
    assert window.seconds_left(window.end.timestamp()) == 1


def test_endpoint_classes() -> None:
    cases = {
        ("GET", "/v1/datasets/{ds}/records/{record_id}"): "records.read",
        ("GET", "/v1/datasets/{ds}/records"): "records.read",
        ("PATCH", "/v1/datasets/{ds}/records/{record_id}"): "records.write",
        ("POST", "/v1/datasets/{ds}/import"): "bulk.import",
        ("GET", "/v1/datasets/{ds}/export"): "bulk.export",
        ("GET", "/v1/datasets/{ds}/changes"): "changes",
        ("POST", "/v1/datasets/{ds}/access-requests"): "access",
        ("GET", "/v1/grants/{grant_id}"): "access",
        ("GET", "/v1/datasets/{ds}"): "datasets",
        ("POST", "/v1/apps/{app}/webhooks"): "webhooks",
        ("GET", "/v1/webhooks/{webhook}/deliveries"): "webhooks",
        ("GET", "/v1/apps/{app}/usage"): "management",
        ("GET", "/v1/plans"): "management",
        ("GET", "unmatched"): "other",
    }
    for (method, route), expected in cases.items():
        assert endpoint_class(method, route) == expected, (method, route)
        assert expected in CLASSES


def test_the_calendar_turns_at_utc_midnight() -> None:
    calendar = Calendar()
    before = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC).timestamp()
    day, month = calendar.current(before)
    assert (day.name, month.name) == ("2026-11-30", "2026-11")
    day, month = calendar.current(before + 1)
    assert (day.name, month.name) == ("2026-12-01", "2026-12")
    day, _ = calendar.current(before - 86_400 * 3)  # a clock stepped back is followed too
    assert day.name == "2026-11-27"


def test_every_v1_route_has_a_class_of_its_own() -> None:
    """A new /v1 route must be placed in a usage class, not fall into 'other'."""
    from entrepot.app import create_app
    from entrepot.settings import Settings

    document = create_app(Settings(database_url="postgresql://unused.invalid/none")).openapi()
    for path, operations in document["paths"].items():
        for method in operations:
            if path.startswith("/v1/"):
                assert endpoint_class(method.upper(), path) != "other", (method, path)
