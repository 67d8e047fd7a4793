"""A wrong setting or an unusable store: one line on stderr, never a traceback or a password.

Every case runs the real command (serve, migrate, admin create-key) as a
process. Settings errors exit 2, a store that cannot be used exits 1.
"""

from __future__ import annotations

import asyncio
import os
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from entrepot.store.embedded import with_database
from tests.e2e.test_serve import free_port

pytestmark = pytest.mark.slow

PASSWORD = "hunter2-" + uuid.uuid4().hex[:8]  # in every URL below; never in any output
COMMANDS = [["serve"], ["migrate"], ["admin", "create-key"]]
SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


class _RefusingPostgres(socketserver.BaseRequestHandler):
    """Speaks just enough of the protocol to refuse the password, as PostgreSQL does."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        while True:
            header = sock.recv(8, socket.MSG_WAITALL)
            if len(header) < 8:
                return
            length, code = struct.unpack("!ii", header)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                sock.sendall(b"N")  # no TLS here: go on in plain text
                continue
            sock.recv(length - 8, socket.MSG_WAITALL)  # the startup parameters
            break
        fields = b'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "app"\0\0'
        sock.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)


@pytest.fixture(scope="module")
def refusing_postgres() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RefusingPostgres)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class Case:
    env: dict[str, str]
    status: int
    line: str  # the whole line, or a part of it after '...'


def cases(pg_admin_url: str, refusing_port: int) -> dict[str, Case]:
    missing = with_database(pg_admin_url, f"entrepot_missing_{uuid.uuid4().hex[:8]}")
    join = "&" if "?" in missing else "?"
    return {
        "refused port": Case(
            {"ENTREPOT_DATABASE_URL": f"postgresql://app:{PASSWORD}@127.0.0.1:1/entrepot"},
            1,
            "entrepot: cannot connect to PostgreSQL at 127.0.0.1:1 (connection refused); "
            "check ENTREPOT_DATABASE_URL",
        ),
        "unknown host": Case(
            {"ENTREPOT_DATABASE_URL": f"postgresql://app:{PASSWORD}@nowhere.invalid/entrepot"},
            1,
            "entrepot: cannot connect to PostgreSQL at nowhere.invalid (host not found); "
            "check ENTREPOT_DATABASE_URL",
        ),
        "bad password": Case(
            {
                "ENTREPOT_DATABASE_URL": (
                    f"postgresql://app:{PASSWORD}@127.0.0.1:{refusing_port}/entrepot"
                )
            },
            1,
            f"entrepot: PostgreSQL at 127.0.0.1:{refusing_port} refused the credentials "
            '(password authentication failed for user "app"); check ENTREPOT_DATABASE_URL',
        ),
        "unknown role": Case(
            {
                "ENTREPOT_DATABASE_URL": with_database(pg_admin_url, "postgres").replace(
                    "postgresql://postgres", f"postgresql://nobody_{uuid.uuid4().hex[:6]}", 1
                )
                + f"{join}password={PASSWORD}"
            },
            1,
            "...refused the credentials (role ",
        ),
        "missing database": Case(
            {"ENTREPOT_DATABASE_URL": f"{missing}{join}password={PASSWORD}"},
            1,
            f'...database "{missing.rsplit("/", 1)[1].split("?")[0]}" does not exist',
        ),
        "refused direct port": Case(
            {
                "ENTREPOT_DATABASE_URL": pg_admin_url,
                "ENTREPOT_DIRECT_DATABASE_URL": f"postgresql://app:{PASSWORD}@127.0.0.1:1/e",
            },
            1,
            "entrepot: cannot connect to PostgreSQL at 127.0.0.1:1 (connection refused); "
            "check ENTREPOT_DIRECT_DATABASE_URL",
        ),
        "pooler without a direct URL": Case(
            {"ENTREPOT_DATABASE_URL": pg_admin_url, "ENTREPOT_POOLER": "transaction"},
            2,
            "entrepot: ENTREPOT_POOLER: transaction needs ENTREPOT_DIRECT_DATABASE_URL, the "
            "server's own URL (LISTEN and migrations need a session of their own) ('transaction')",
        ),
        "malformed URL": Case(
            {"ENTREPOT_DATABASE_URL": f"postgresql://app:{PASSWORD}@db:5432x/entrepot"},
            2,
            "entrepot: ENTREPOT_DATABASE_URL: has a port that is not a number from 1 to 65535",
        ),
        "not a PostgreSQL URL": Case(
            {"ENTREPOT_DATABASE_URL": f"mysql://app:{PASSWORD}@db/entrepot"},
            2,
            "entrepot: ENTREPOT_DATABASE_URL: must be a postgresql:// URL, "
            "e.g. postgresql://user:password@host/db",
        ),
        "port not a number": Case(
            {"ENTREPOT_PORT": "abc"},
            2,
            "entrepot: ENTREPOT_PORT: not a valid integer ('abc')",
        ),
        "unknown log format": Case(
            {"ENTREPOT_LOG_FORMAT": "xml"},
            2,
            "entrepot: ENTREPOT_LOG_FORMAT: must match ^(auto|json|console)$ ('xml')",
        ),
        "short bootstrap token": Case(
            {"ENTREPOT_BOOTSTRAP_TOKEN": PASSWORD},
            2,
            "entrepot: ENTREPOT_BOOTSTRAP_TOKEN: must be at least 32 characters; make one "
            "with python3 -c 'import secrets; print(secrets.token_urlsafe(32))'",
        ),
    }


CASE_NAMES = list(cases("postgresql://postgres@h/postgres", 1))


def run(
    command: list[str], env: dict[str, str], data_dir: Path
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    full_env.update({"ENTREPOT_DATA_DIR": str(data_dir), **env})
    extra = ["--port", str(free_port())] if command == ["serve"] else []
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *command, *extra],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], status: int, line: str) -> None:
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert PASSWORD not in output
    lines = [s for s in done.stderr.splitlines() if not s.startswith("Embedded PostgreSQL")]
    assert len(lines) == 1, done.stderr
    if line.startswith("..."):
        assert lines[0].startswith("entrepot: ")
        assert line[3:] in lines[0]
        assert "check ENTREPOT_DATABASE_URL" in lines[0]
    else:
        assert lines[0] == line
    assert done.stdout == ""
    assert done.returncode == status


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_one_clear_line(
    name: str,
    command: list[str],
    pg_admin_url: str,
    refusing_postgres: int,
    tmp_path: Path,
) -> None:
    case = cases(pg_admin_url, refusing_postgres)[name]
    assert_one_line(run(command, case.env, tmp_path / "data"), case.status, case.line)
    assert not (tmp_path / "data").exists(), "no embedded PostgreSQL was started"


def test_a_taken_metrics_port_is_one_clear_line(
    tmp_path: Path, fresh_database: Callable[[], Awaitable[str]]
) -> None:
    url = asyncio.run(fresh_database())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"ENTREPOT_DATABASE_URL": url, "ENTREPOT_METRICS_PORT": str(port)}
        done = run(["serve"], env, tmp_path / "data")
    lines = [s for s in done.stderr.splitlines() if not s.startswith("{")]  # migration logs
    assert lines[-1] == (
        f"entrepot: cannot listen for metrics on 127.0.0.1:{port} (address already in use); "
        "check ENTREPOT_METRICS_PORT and ENTREPOT_METRICS_HOST"
    ), done.stderr
    assert "Traceback" not in done.stderr
    assert done.returncode == 1
