"""A real PgBouncer in transaction mode in front of the test PostgreSQL (Debian's pgbouncer,
1.18: no prepared-statement tracking), on a free port of 127.0.0.1, for as long as a
block runs.

Every database name is passed through (``* =``), so a suite's fresh database is reached
through it under its own name; each (database, user) pair gets ``POOL_SIZE`` server
connections at most, far fewer than the suites' client connections, so transactions
really do move between server connections. PgBouncer will not run as root: as root it
is started with ``-u postgres`` (the user Debian's PostgreSQL runs as), its files in a
directory that user can read.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

from tests.e2e.test_serve import free_port

POOL_SIZE = 5
MAX_CLIENTS = 400
START_SECONDS = 15.0
RUN_AS = "postgres"

CONFIG = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = {max_clients}
server_reset_query =
"""


@dataclass(frozen=True, slots=True)
class Bouncer:
    port: int
    log: Path
    pid: int

    def server_ports(self) -> set[int]:
        """The local ports of PgBouncer's connections to the server (its server pool)."""
        return {
            c.laddr.port
            for c in psutil.Process(self.pid).net_connections(kind="tcp")
            if c.raddr and c.raddr.port != self.port and c.status == psutil.CONN_ESTABLISHED
        }

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, database_url: str) -> str:
        """``database_url`` (the server's) reached through this PgBouncer."""
        return via(database_url, self.address)


def via(database_url: str, address: str) -> str:
    """``database_url`` with its host and port replaced by ``address`` (host:port)."""
    parts = urlsplit(database_url)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{address}" if user else address))


def _user_of(url: str) -> str:
    return urlsplit(url).username or "postgres"


@contextmanager
def running(executable: str, server_url: str, log: Path) -> Iterator[Bouncer]:
    """PgBouncer in front of the server of ``server_url`` (whose user it lets in)."""
    upstream = urlsplit(server_url)
    directory = Path(tempfile.mkdtemp(prefix="entrepot-pgbouncer-"))
    directory.chmod(0o755)  # readable by the user pgbouncer switches to
    port = free_port()
    config = directory / "pgbouncer.ini"
    config.write_text(
        CONFIG.format(
            host=upstream.hostname or "127.0.0.1",
            port=upstream.port or 5432,
            listen=port,
            directory=directory,
            pool_size=POOL_SIZE,
            max_clients=MAX_CLIENTS,
        )
    )
    (directory / "userlist.txt").write_text(f'"{_user_of(server_url)}" ""\n')
    for path in directory.iterdir():
        path.chmod(0o644)
    command = [executable, str(config)]
    if os.geteuid() == 0:
        pwd.getpwnam(RUN_AS)  # KeyError: no such user to run as
        command[1:1] = ["-u", RUN_AS]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    bouncer = Bouncer(port, log, proc.pid)
    try:
        _wait_until_it_answers(proc, bouncer, server_url)
        yield bouncer
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_until_it_answers(proc: subprocess.Popen[bytes], bouncer: Bouncer, url: str) -> None:
    import asyncio

    async def answers() -> bool:
        try:
            conn = await asyncpg.connect(bouncer.url(url), timeout=2, statement_cache_size=0)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    deadline = time.monotonic() + START_SECONDS
    while not asyncio.run(answers()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"pgbouncer did not start:\n{bouncer.log.read_text()}")
        time.sleep(0.1)
