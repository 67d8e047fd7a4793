"""deploy/compose: three API replicas behind HAProxy, PostgreSQL, Redis and a one-shot
migration. Checked as docker-compose reads it (``config``) and, from the parsed files,
for the properties the setup promises: the replicas wait for the migration, HAProxy
routes to exactly them on /readyz, and nothing writable but /tmp."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from entrepot.store.budget import START_UP_PEAK
from tests.deploy import dockerfile, facts
from tests.tools import require

COMPOSE = facts.COMPOSE_DIR / "docker-compose.yml"
HAPROXY_CFG = facts.COMPOSE_DIR / "haproxy.cfg"
ENV_EXAMPLE = facts.COMPOSE_DIR / "env.example"
POSTGRES_MAX_CONNECTIONS = 100  # the postgres image's default; the compose file keeps it
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]*\}")


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())  # resolves the x- anchors and << merges
    assert isinstance(loaded, dict)
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def api_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if s.get("command") == ["serve"]}


def haproxy_sections() -> dict[str, list[str]]:
    """haproxy.cfg as {"backend entrepot_api": [its lines]}, comments left out."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in HAPROXY_CFG.read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line[0].isspace():
            current = sections.setdefault(line.strip(), [])
        else:
            current.append(line.strip())
    return sections


def image_port() -> str:
    """The port the image serves on (its ENV), which compose leaves as it is."""
    return dockerfile.parse(facts.ROOT / "Dockerfile").final.env({}, {})["ENTREPOT_PORT"]


def image_healthcheck() -> list[str]:
    final = dockerfile.parse(facts.ROOT / "Dockerfile").final
    return dockerfile.exec_form(final.all("HEALTHCHECK")[0])


def example_env() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {key: value for key, value in pairs}


def docker_compose(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    binary = require("docker-compose", "docker-compose")
    # The host's own values of the variables would hide a missing one.
    env = {k: v for k, v in os.environ.items() if k not in example_env()}
    return subprocess.run(
        [binary, "-f", str(COMPOSE), "--env-file", str(env_file), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_docker_compose_accepts_the_file_with_the_example_secrets() -> None:
    done = docker_compose("config", "-q", env_file=ENV_EXAMPLE)
    assert done.returncode == 0, done.stderr


def test_docker_compose_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = docker_compose("config", "-q", env_file=empty)
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD in deploy/compose/.env" in done.stderr


def test_every_required_variable_is_in_the_example_and_no_more() -> None:
    required = set(REQUIRED.findall(COMPOSE.read_text()))
    assert required == {"POSTGRES_PASSWORD", "ENTREPOT_BOOTSTRAP_TOKEN"}
    assert required <= set(example_env())
    # The example's bootstrap token is one the server accepts (at least 32 characters).
    assert len(example_env()["ENTREPOT_BOOTSTRAP_TOKEN"]) >= 32
    ignored = facts.ROOT.joinpath(".gitignore").read_text().splitlines()
    assert "deploy/compose/.env" in ignored, "the real secrets are never committed"


def test_three_api_replicas_of_one_image_wait_for_the_migration() -> None:
    apis = api_services()
    assert sorted(apis) == ["api1", "api2", "api3"]
    migrate = services()["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no", "a one-shot: restarting it would never complete"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, api in apis.items():
        assert api["image"] == migrate["image"], name
        assert api["environment"] == migrate["environment"], f"{name}: same settings"
        assert api["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert api["restart"] == "unless-stopped"
        assert api["healthcheck"]["test"] == ["CMD", *image_healthcheck()], "the image's"
        assert api["read_only"] is True, f"{name}: a read-only root filesystem"
        assert api["tmpfs"] == ["/tmp"]  # noqa: S108 - the container's own /tmp
        assert api["cap_drop"] == ["ALL"]
        stop = int(api["stop_grace_period"].rstrip("s"))
        stopping = facts.graceful_shutdown_seconds(api["environment"])
        assert stop > stopping, "SIGKILL only after the drain and the stop"


def test_the_settings_are_real_and_the_store_and_redis_are_the_services() -> None:
    environment = services()["migrate"]["environment"]
    assert set(environment) <= facts.SETTINGS
    assert "@postgres:5432/" in environment["ENTREPOT_DATABASE_URL"]
    assert environment["ENTREPOT_REDIS_URL"].startswith("redis://redis:6379/")
    for name, service in services().items():
        if name != "migrate":
            assert service["restart"] == "unless-stopped", name
            assert "healthcheck" in service, name


def test_the_replicas_connection_budgets_fit_postgresql_s_default() -> None:
    """postgres:16 keeps max_connections at 100, 3 of them for superusers: the replicas
    and the migration fit, so none is refused at start (store/capacity.py)."""
    needed = sum(facts.budget(api["environment"]).per_replica for api in api_services().values())
    assert len(api_services()) == 3
    assert needed + START_UP_PEAK <= POSTGRES_MAX_CONNECTIONS - 3, needed


def test_haproxy_routes_to_exactly_the_replicas_while_they_answer_readyz() -> None:
    sections = haproxy_sections()
    (backend,) = (lines for name, lines in sections.items() if name.startswith("backend "))
    servers = [line.split()[1:3] for line in backend if line.startswith("server ")]
    port = image_port()
    assert servers == [[name, f"{name}:{port}"] for name in api_services()]
    assert "http-check send meth GET uri /readyz" in backend
    assert "http-check expect status 200" in backend
    assert "/readyz" in facts.get_routes()
    assert "/healthz" in facts.get_routes()
    default_server = next(line for line in backend if line.startswith("default-server "))
    assert " check " in f" {default_server} "

    haproxy = services()["haproxy"]
    assert set(haproxy["depends_on"]) == set(api_services())
    assert "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in haproxy["volumes"]
    published = {p.rsplit(":", 1)[1]: p for p in haproxy["ports"]}
    (frontend,) = (lines for name, lines in sections.items() if name == "frontend entrepot")
    (bind,) = (line for line in frontend if line.startswith("bind "))
    assert bind.split(":")[-1] in published, "the frontend's port is published"
    assert published["8404"].startswith("127.0.0.1:"), "the stats page stays on the host"


def test_haproxy_accepts_its_configuration() -> None:
    binary = require("haproxy", "haproxy")
    done = subprocess.run(
        [binary, "-c", "-f", str(HAPROXY_CFG)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", ["postgres", "redis", "haproxy"])
def test_the_other_services_have_healthchecks(name: str) -> None:
    assert services()[name]["healthcheck"]["test"][0] == "CMD"


def test_the_stores_keep_their_data_in_volumes() -> None:
    """PostgreSQL's data, and Redis's quota counters (docs/limits.md), outlive containers."""
    volumes = set(compose()["volumes"])
    postgres = services()["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    redis = services()["redis"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    (redis_volume,) = redis["volumes"]
    assert redis_volume.split(":")[0] in volumes
    assert redis_volume.endswith(":/data")
