"""How fast a portal page's first byte comes, cold and warm, beside the API's own floor.

One `entrepot serve` (1 worker) on a fresh migrated database; a provider org with a
dataset of a few records, a person who owns it, an app with a key. Each request is a
cold load as a browser without a cache makes it: a new TCP connection, the request,
and the time until the first byte of the answer (time to first byte, TTFB).

  first         the server's first portal page after start (the sign-in page), then
                the first of each signed-in page (templates were compiled at start;
                the session, user and memberships are read from the store per page)
  warm          each page again, N times: median and 95th percentile
  baseline      GET /v1/me with an API key, the same way: the API's floor on this
                machine (its auth step and one read), measured in the same run

    .venv/bin/python bench/portal.py --requests 200 --append
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

from _common import (
    DEFAULT_PG_URL,
    HOST,
    create_database,
    drop_database,
    machine,
    prepare_store,
    publish,
    start_entrepot,
)

PASSWORD = "correct horse battery staple"  # noqa: S105 (a test account on a throwaway database)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def ttfb(port: int, path: str, headers: dict[str, str]) -> tuple[float, int]:
    """Milliseconds from a new connection's request to its answer's first byte; status."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection((HOST, port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        conn.sendall(request)
        first = conn.recv(1)
        elapsed = (time.perf_counter() - start) * 1000
        rest = first + conn.recv(64)
        while conn.recv(65536):
            pass
    return elapsed, int(rest.split(b" ", 2)[1])


async def setup(base: str, token: str) -> dict[str, str]:
    admin = httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"})
    async with admin:
        # A person's pages share their rate limit (the default plan's): roomy enough here.
        roomy = {"rate_per_second": 1_000_000, "burst": 1_000_000}
        assert (await admin.patch("/v1/plans/default", json=roomy)).is_success
        assert (await admin.post("/v1/orgs", json={"name": "acme", "title": "Acme"})).is_success
        made = await admin.post(
            "/v1/datasets",
            json={
                "name": "prices",
                "org": "acme",
                "title": "Prices",
                "primary_key": "sku",
                "schema": {
                    "type": "object",
                    "properties": {"sku": {"type": "string"}, "price": {"type": "number"}},
                },
            },
        )
        assert made.is_success, made.text
        for i in range(20):
            await admin.put(f"/v1/datasets/prices/records/s{i}", json={"sku": f"s{i}", "price": i})
        await admin.post("/v1/users", json={"email": "ops@acme.test", "password": PASSWORD})
        await admin.post("/v1/orgs/acme/members", json={"email": "ops@acme.test", "role": "owner"})
        app = (await admin.post("/v1/apps", json={"org": "acme", "name": "shop"})).json()
        key = (await admin.post(f"/v1/apps/{app['id']}/keys", json={"name": "k"})).json()
    return {"app": app["id"], "key": key["key"]}


async def sign_in(base: str) -> str:
    async with httpx.AsyncClient(base_url=base) as browser:
        form = await browser.get("/portal/sign-in")
        token = CSRF.search(form.text)
        assert token
        done = await browser.post(
            "/portal/sign-in",
            data={"csrf_token": token.group(1), "email": "ops@acme.test", "password": PASSWORD},
        )
        assert done.status_code == 303, done.text
        return f"entrepot_portal={browser.cookies['entrepot_portal']}"


def measure(args: argparse.Namespace) -> dict[str, object]:
    token = "bench-admin-" + secrets.token_hex(16)
    name, url = asyncio.run(create_database(args.pg_url, "bench_portal"))
    server = None
    try:
        asyncio.run(prepare_store(url, token))
        with tempfile.TemporaryDirectory() as logs:
            server = start_entrepot(url, token, 1, Path(logs), {"ENTREPOT_LOG_LEVEL": "warning"})
            port = server.port
            first = {"sign-in (the server's first page)": ttfb(port, "/portal/sign-in", {})}
            ids = asyncio.run(setup(server.base_url, token))
            cookie = {"Cookie": asyncio.run(sign_in(server.base_url))}
            pages = {
                "home": "/portal/",
                "catalogue": "/portal/catalog",
                "dataset": "/portal/catalog/prices",
                "app (keys, usage, quickstart)": f"/portal/apps/{ids['app']}",
                "approvals": "/portal/approvals",
            }
            for label, path in pages.items():
                first[label] = ttfb(port, path, cookie)
            pages = {"sign-in": "/portal/sign-in", **pages}
            bearer = {"Authorization": f"Bearer {ids['key']}"}
            warm: dict[str, list[float]] = {label: [] for label in pages}
            warm["baseline: GET /v1/me"] = []
            for _ in range(args.requests):  # interleaved: a busy moment hits all alike
                for label, path in pages.items():
                    elapsed, status = ttfb(port, path, {} if label == "sign-in" else cookie)
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
        f"### Portal pages, time to first byte ({when})",
        "",
        f"Machine: {machine()}. Command: `.venv/bin/python bench/portal.py --requests "
        f"{args.requests}`. Every request on a new connection (a cold browser load).",
        "",
        "| page | first after start (ms) | warm median (ms) | warm p95 (ms) | median / baseline |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, times in warm.items():
        key = next((k for k in first if k.startswith(label.split(" ")[0])), None)
        cold = f"{first[key][0]:.1f}" if key else "-"
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
