"""A real PgBouncer (Debian's pgbouncer) for the suites of this folder; without it they
are skipped naming the package to install, and fail in CI, which installs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pgbouncer.bouncer import Bouncer, running
from tests.tools import require


@pytest.fixture(scope="session")
def pgbouncer_executable() -> str:
    return require("pgbouncer", "pgbouncer")


@pytest.fixture(scope="module")
def bouncer(
    pgbouncer_executable: str, pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bouncer]:
    log = tmp_path_factory.mktemp("pgbouncer") / "pgbouncer.log"
    with running(pgbouncer_executable, pg_admin_url, log) as started:
        yield started
