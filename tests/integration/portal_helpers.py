"""The portal as a browser without JavaScript uses it: GET a page, read its form's CSRF
token, POST the form. Shared by the portal's integration and browser suites."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.factories import unique

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
COOKIE = "entrepot_portal"


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, f"no CSRF token in the page:\n{html[:2000]}"
    return found.group(1)


async def make_person(
    admin: httpx.AsyncClient, org: str | None = None, role: str = "owner", **user: Any
) -> str:
    """A user (its email returned), member of ``org`` with ``role`` when given."""
    email = f"{unique('person')}@example.test"
    made = await admin.post("/v1/users", json={"email": email, "password": PASSWORD, **user})
    assert made.status_code == 201, made.text
    if org is not None:
        added = await admin.post(f"/v1/orgs/{org}/members", json={"email": email, "role": role})
        assert added.status_code == 201, added.text
    return email


async def post_form(
    browser: httpx.AsyncClient, page: str, action: str, data: dict[str, Any]
) -> httpx.Response:
    """Load ``page``, then send its form to ``action`` with ``data`` and the page's token."""
    shown = await browser.get(page)
    assert shown.status_code == 200, shown.text
    return await browser.post(action, data={"csrf_token": csrf_of(shown.text), **data})


async def sign_in(browser: httpx.AsyncClient, email: str, password: str = PASSWORD) -> None:
    done = await post_form(
        browser, "/portal/sign-in", "/portal/sign-in", {"email": email, "password": password}
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/portal/"
