"""How fast the provider's pages and the admin console answer their first byte, beside
the API's floor, measured as bench/portal.py measures the consumer's (and with its
helpers): one `entrepot serve` (1 worker), every request on a new connection.

  first         the first of each page after start, signed in (templates were
                compiled at start)
  warm          each page again, N times: median and 95th percentile
  baseline      GET /v1/me with an API key, the same way, in the same run

The dataset has 20 records; the edit page checks the first 5 against the schema, the
audit page reads its newest 50 rows, the health page asks readiness (the store, a
SELECT 1) and PostgreSQL's view of the listeners.

    .venv/bin/python bench/portal_console.py --requests 200 --append
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

from _common import (
    DEFAULT_PG_URL,
    create_database,
    drop_database,
    machine,
    prepare_store,
    publish,
    start_entrepot,
)
from portal import CSRF, PASSWORD, setup, ttfb

ADMIN = "root@acme.test"


async def sign_in_as(base: str, email: str) -> str:
    async with httpx.AsyncClient(base_url=base) as browser:
        form = await browser.get("/portal/sign-in")
        token = CSRF.search(form.text)
        assert token
        done = await browser.post(
            "/portal/sign-in",
            data={"csrf_token": token.group(1), "email": email, "password": PASSWORD},
        )
        assert done.status_code == 303, done.text
        return f"entrepot_portal={browser.cookies['entrepot_portal']}"


async def make_admin(base: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
        made = await c.post(
            "/v1/users", json={"email": ADMIN, "password": PASSWORD, "is_platform_admin": True}
        )
        assert made.is_success, made.text
        added = await c.post("/v1/orgs/acme/members", json={"email": ADMIN, "role": "owner"})
        assert added.is_success, added.text


PAGES = {
    "your datasets": "/portal/datasets",
    "new dataset (schema checked)": "/portal/datasets/new",
    "edit dataset (stored records checked)": "/portal/datasets/prices/edit",
    "import form": "/portal/datasets/prices/import",
    "audit log (50 rows)": "/portal/audit",
    "webhooks": "/portal/webhooks",
    "admin: health": "/portal/admin",
    "admin: plans": "/portal/admin/plans",
    "admin: organisations": "/portal/admin/orgs",
    "admin: people": "/portal/admin/users",
}


def measure(args: argparse.Namespace) -> dict[str, object]:
    token = "bench-admin-" + secrets.token_hex(16)
    name, url = asyncio.run(create_database(args.pg_url, "bench_console"))
    server = None
    try:
        asyncio.run(prepare_store(url, token))
        with tempfile.TemporaryDirectory() as logs:
            server = start_entrepot(url, token, 1, Path(logs), {"ENTREPOT_LOG_LEVEL": "warning"})
            port = server.port
            ids = asyncio.run(setup(server.base_url, token))
            asyncio.run(make_admin(server.base_url, token))
            cookie = {"Cookie": asyncio.run(sign_in_as(server.base_url, ADMIN))}
            first = {label: ttfb(port, path, cookie) for label, path in PAGES.items()}
            bearer = {"Authorization": f"Bearer {ids['key']}"}
            warm: dict[str, list[float]] = {label: [] for label in PAGES}
            warm["baseline: GET /v1/me"] = []
            for _ in range(args.requests):  # interleaved: a busy moment hits all alike
                for label, path in PAGES.items():
                    elapsed, status = ttfb(port, path, cookie)
                    assert status == 200, (path, status)
                    warm[label].append(elapsed)
                warm["baseline: GET /v1/me"].append(ttfb(port, "/v1/me", bearer)[0])
            return {"first": first, "warm": warm}
    finally:
        if server is not None:
            server.stop()
        asyncio.run(drop_database(args.pg_url, name))


def report(result: dict[str, object], args: argparse.Namespace) -> str:
    first: dict[str, tuple[float, int]] = result["first"]  # type: ignore[assignment]
    warm: dict[str, list[float]] = result["warm"]  # type: ignore[assignment]
    floor = statistics.median(warm["baseline: GET /v1/me"])
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "",
        f"### Provider and admin console pages, time to first byte ({when})",
        "",
        f"Machine: {machine()}. Command: `.venv/bin/python bench/portal_console.py "
        f"--requests {args.requests}`. Every request on a new connection (a cold browser "
        "load), signed in as a platform administrator who owns the dataset's organisation.",
        "",
        "| page | first after start (ms) | warm median (ms) | warm p95 (ms) | median / baseline |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, times in warm.items():
        cold = f"{first[label][0]:.1f}" if label in first else "-"
        p95 = statistics.quantiles(times, n=20)[-1]
        median = statistics.median(times)
        out.append(f"| {label} | {cold} | {median:.2f} | {p95:.2f} | {median / floor:.2f}x |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    publish(report(measure(args), args), args.append)


if __name__ == "__main__":
    main()
