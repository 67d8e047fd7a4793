"""What operators watch, on a real `entrepot serve`'s metrics listener after real requests.

Every metric the dashboard and the alert rules in deploy/observability/ read is
one the server exports; and each metric added for them moves as its name says:
requests by calling app, the pools' connections and waits, rate-limit
decisions, bulk jobs from admission to end.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.slow_clients import stalled_export
from tests.e2e.test_serve import free_port, serving
from tests.promql import OBSERVABILITY, dashboard_queries, metric_names, rule_queries

pytestmark = pytest.mark.slow

ADMIN = "e2e-operator-admin-" + uuid.uuid4().hex
POOL_MAX, BULK_POOL = 4, 3
SCHEMA = {
    "type": "object",
    "properties": {"sku": {"type": "string"}, "name": {"type": "string"}},
    "required": ["sku"],
}
# Made by Prometheus itself when it scrapes, never by the target.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
# The sample names a family of each type exposes (the text format's suffixes).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "unknown": ("",),
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Server:
    def __init__(self, base: str, metrics_port: int) -> None:
        self.base = base
        self.port = int(base.rsplit(":", 1)[1])
        self.metrics = f"http://127.0.0.1:{metrics_port}/metrics"

    def text(self) -> str:
        response = httpx.get(self.metrics, timeout=10)
        assert response.status_code == 200
        return response.text

    def samples(self) -> Samples:
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(self.text())
            for s in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels``."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples().items() if n == name and want <= ls)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fresh_database: object) -> Iterator[Server]:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    metrics_port = free_port()
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": ADMIN,
        "ENTREPOT_LOG_FORMAT": "console",
        "ENTREPOT_METRICS_PORT": str(metrics_port),
        "ENTREPOT_POOL_MAX_SIZE": str(POOL_MAX),
        "ENTREPOT_BULK_POOL_SIZE": str(BULK_POOL),
        "ENTREPOT_BULK_STALL_SECONDS": "30",
    }
    log = tmp_path_factory.mktemp("operator") / "serve.log"
    with serving(env, log=log) as base:
        yield Server(base, metrics_port)


def admin(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    )


async def new_dataset(client: httpx.AsyncClient) -> str:
    org = "o-" + uuid.uuid4().hex[:8]
    assert (await client.post("/v1/orgs", json={"name": org, "title": "O"})).status_code == 201
    name = "ds-" + uuid.uuid4().hex[:8]
    created = await client.post(
        "/v1/datasets",
        json={"name": name, "org": org, "title": "T", "schema": SCHEMA, "primary_key": "sku"},
    )
    assert created.status_code == 201, created.text
    return name


async def app_key(client: httpx.AsyncClient, plan: str | None = None) -> tuple[str, str]:
    """A fresh app (of a fresh org), on ``plan`` if given: its id and an API key."""
    org = "o-" + uuid.uuid4().hex[:8]
    assert (await client.post("/v1/orgs", json={"name": org, "title": "O"})).status_code == 201
    app = await client.post(
        "/v1/apps", json={"org": org, "name": uuid.uuid4().hex, "scopes": ["datasets:read"]}
    )
    assert app.status_code == 201, app.text
    app_id = app.json()["id"]
    if plan is not None:
        moved = await client.patch(f"/v1/apps/{app_id}", json={"plan": plan})
        assert moved.status_code == 200, moved.text
    key = await client.post(f"/v1/apps/{app_id}/keys", json={"name": "k"})
    assert key.status_code == 201, key.text
    return app_id, str(key.json()["key"])


def eventually(check: Callable[[], bool], what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(0.1)


def exported_names(text: str) -> set[str]:
    """Every sample name the families in ``text`` can have, each by its type's suffixes
    (a labelled family that has seen no value yet still declares its name and type)."""
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in SUFFIXES[family.type]
    }


async def test_requests_are_counted_by_the_app_that_called(server: Server) -> None:
    async with admin(server) as client:
        app_id, key = await app_key(client)
        before = server.samples()
        assert (await client.get("/v1/datasets")).status_code == 200
        as_app = await client.get("/v1/datasets", headers={"Authorization": f"Bearer {key}"})
        assert as_app.status_code == 200
        assert (await client.get("/healthz", headers={"Authorization": ""})).status_code == 200
    after = server.samples()

    def moved(route: str, app: str) -> float:
        labels = frozenset({"method": "GET", "route": route, "status": "200", "app": app}.items())
        key = ("entrepot_http_requests_total", labels)
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("/v1/datasets", "admin") == 1
    assert moved("/v1/datasets", app_id) == 1
    assert moved("/healthz", "anonymous") == 1


async def test_pools_report_their_connections_and_time_every_wait(server: Server) -> None:
    # The planned pool's share (filtered lists) comes out of the request pool's.
    planned = server.value("entrepot_db_pool_max_connections", pool="planned")
    assert planned >= 1
    assert server.value("entrepot_db_pool_max_connections", pool="requests") == POOL_MAX - planned
    assert server.value("entrepot_db_pool_max_connections", pool="bulk") == BULK_POOL
    # The connection budget: the pools and the three listeners, all to the server itself.
    assert server.value("entrepot_db_connection_budget", via="server") == POOL_MAX + BULK_POOL + 3
    assert server.value("entrepot_db_connection_budget", via="pooler") == 0
    assert server.value("entrepot_db_pool_connections", pool="requests") >= 1
    waits = server.value("entrepot_db_pool_acquire_seconds_count", pool="requests")
    async with admin(server) as client:
        assert (await client.get("/v1/datasets")).status_code == 200
        ds = await new_dataset(client)
        rows = "".join(f'{{"sku":"s{i}","name":"{"n" * 500}"}}\n' for i in range(20_000))
        imported = await client.post(
            f"/v1/datasets/{ds}/import",
            content=rows,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert imported.status_code == 200, imported.text
    assert server.value("entrepot_db_pool_acquire_seconds_count", pool="requests") > waits
    assert server.value("entrepot_db_pool_acquire_seconds_count", pool="bulk") >= 1

    # An export whose reader stalls holds its bulk connection: the gauges show it lent.
    held = asyncio.create_task(stalled_export(server.port, ADMIN, ds, hold=8))
    await asyncio.to_thread(
        eventually,
        lambda: server.value("entrepot_db_pool_in_use_connections", pool="bulk") == 1,
        "the stalled export's bulk connection reported in use",
    )
    open_bulk = server.value("entrepot_db_pool_connections", pool="bulk")
    idle_bulk = server.value("entrepot_db_pool_idle_connections", pool="bulk")
    assert open_bulk - idle_bulk == 1
    await held
    await asyncio.to_thread(
        eventually,
        lambda: server.value("entrepot_db_pool_in_use_connections", pool="bulk") == 0,
        "the bulk connection given back once the reader left",
        20,
    )


async def test_rate_limit_decisions_are_counted_allowed_and_refused(server: Server) -> None:
    async with admin(server) as client:
        plan = "p-" + uuid.uuid4().hex[:8]
        created = await client.post(
            "/v1/plans", json={"name": plan, "rate_per_second": 0.01, "burst": 2}
        )
        assert created.status_code == 201, created.text
        _, key = await app_key(client, plan)
        allowed = server.value(
            "entrepot_rate_limit_decisions_total", limit="plan", outcome="allowed"
        )
        refused = server.value("entrepot_rate_limit_decisions_total", limit="plan", reason="rate")
        statuses = [
            (
                await client.get("/v1/datasets", headers={"Authorization": f"Bearer {key}"})
            ).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        # A bad bearer passes the per-address throttle of failed authentications first.
        failures = server.value("entrepot_rate_limit_decisions_total", limit="auth_failures")
        bad = await client.get("/v1/datasets", headers={"Authorization": "Bearer ent_nope"})
        assert bad.status_code == 401
        # A password sign-in passes the account's throttle of failed sign-ins first.
        sign_ins = server.value("entrepot_rate_limit_decisions_total", limit="sign_in")
        wrong = await client.post(
            "/v1/auth/token", json={"email": "nobody@example.test", "password": "wrong-password"}
        )
        assert wrong.status_code == 401, wrong.text
    assert server.value("entrepot_rate_limit_decisions_total", limit="sign_in") == sign_ins + 1
    assert (
        server.value("entrepot_rate_limit_decisions_total", limit="plan", outcome="allowed")
        == allowed + 2
    )
    assert (
        server.value("entrepot_rate_limit_decisions_total", limit="plan", reason="rate")
        == refused + 1
    )
    assert (
        server.value("entrepot_rate_limit_decisions_total", limit="auth_failures") == failures + 1
    )


async def test_bulk_jobs_are_counted_from_admission_to_end(server: Server) -> None:
    def jobs(metric: str, **labels: str) -> float:
        return server.value(f"entrepot_bulk_{metric}_total", **labels)

    async with admin(server) as client:
        ds = await new_dataset(client)
        started = jobs("jobs_started", kind="import")
        completed = jobs("jobs_finished", kind="import", outcome="completed")
        failed = jobs("jobs_finished", kind="import", outcome="failed")
        inserted = jobs("rows", kind="import", result="inserted")
        ndjson = {"Content-Type": "application/x-ndjson"}
        body = '{"sku":"a"}\n{"sku":"b"}\n{"sku":"c"}\n'
        ok = await client.post(f"/v1/datasets/{ds}/import", content=body, headers=ndjson)
        assert ok.status_code == 200, ok.text
        refused = await client.post(
            f"/v1/datasets/{ds}/import",
            content='{"sku":"d"}\n{"name":"no sku"}\n',
            headers=ndjson,
            params={"on_error": "abort"},
        )
        assert refused.status_code == 422, refused.text
        assert jobs("jobs_started", kind="import") == started + 2
        assert jobs("jobs_finished", kind="import", outcome="completed") == completed + 1
        assert jobs("jobs_finished", kind="import", outcome="failed") == failed + 1
        assert jobs("rows", kind="import", result="inserted") == inserted + 3

        exported = jobs("rows", kind="export", result="exported")
        done = jobs("jobs_finished", kind="export", outcome="completed")
        export = await client.get(f"/v1/datasets/{ds}/export")
        assert export.status_code == 200
        assert len(export.text.splitlines()) == 3
        assert jobs("jobs_finished", kind="export", outcome="completed") == done + 1
        assert jobs("rows", kind="export", result="exported") == exported + 3

        audited = jobs("jobs_finished", kind="audit_export", outcome="completed")
        audit = await client.get("/v1/audit/export")
        assert audit.status_code == 200, audit.text
        entries = len(audit.text.splitlines())
        assert entries > 0
    assert jobs("jobs_finished", kind="audit_export", outcome="completed") == audited + 1
    assert jobs("rows", kind="audit_export", result="exported") >= entries


def test_the_dashboard_and_the_rules_read_only_exported_metrics(server: Server) -> None:
    assert httpx.get(f"{server.base}/v1/datasets", headers={"Authorization": f"Bearer {ADMIN}"})
    exported = exported_names(server.text()) | SCRAPE_SERIES
    assert "entrepot_http_requests_total" in exported
    assert "entrepot_http_requests" not in exported, "a counter's samples end in _total"
    assert "entrepot_db_pool_acquire_seconds_bucket" in exported
    queries = [q for p in OBSERVABILITY.glob("*.json") for q in dashboard_queries(p)]
    queries += [q for p in OBSERVABILITY.glob("*.rules.yml") for q in rule_queries(p)]
    assert len(queries) > 20
    unknown = {name: q for q in queries for name in metric_names(q) if name not in exported}
    assert not unknown, f"not exported by the server: {unknown}"
