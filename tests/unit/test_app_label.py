"""The request counter's ``app`` label: an app by its id, other callers by kind, and a
bound on how many apps one process names (past it, ``other``)."""

from __future__ import annotations

import uuid

import pytest

from entrepot import middleware
from entrepot.principal import Principal, anonymous


def app(app_id: uuid.UUID) -> Principal:
    return Principal("app", f"app:{app_id}", "key", frozenset(), app_id=app_id)


def test_callers_are_named_by_app_id_or_by_kind() -> None:
    some = uuid.uuid4()
    assert middleware._app_label(app(some)) == str(some)
    assert middleware._app_label(None) == "anonymous"
    assert middleware._app_label(anonymous("192.0.2.1")) == "anonymous", "reading open data"
    assert middleware._app_label(Principal("user", "user:u", "t", frozenset())) == "user"
    admin = Principal("admin", "admin", "bootstrap", frozenset(), is_admin=True)
    assert middleware._app_label(admin) == "admin"


def test_past_the_bound_apps_are_counted_as_other(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware, "_app_labels", {})
    monkeypatch.setattr(middleware, "MAX_APP_LABELS", 2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert middleware._app_label(app(first)) == str(first)
    assert middleware._app_label(app(second)) == str(second)
    assert middleware._app_label(app(third)) == "other"
    assert middleware._app_label(app(first)) == str(first), "a named app keeps its name"
    assert len(middleware._app_labels) == 2, "the apps past the bound are not remembered"
