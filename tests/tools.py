"""What a suite needs from the machine (promtool, kubectl, haproxy...): a tool CI installs
(.ci/run), else a skip naming its Debian package."""

from __future__ import annotations

import shutil
import socket

import pytest

from tests.conftest import IN_CI

SYSTEM_DIRS = "/usr/sbin:/sbin"  # daemons (pgbouncer) live here, off a user's PATH


def require(command: str, debian_package: str) -> str:
    """The path of ``command``; without it, skip naming the package (fail in CI, which
    must install it)."""
    found = shutil.which(command) or shutil.which(command, path=SYSTEM_DIRS)
    if found:
        return found
    reason = f"{command} not found: install the Debian package {debian_package}"
    if IN_CI:
        pytest.fail(f"CI is set but {reason}")
    pytest.skip(reason)


def require_answering(host: str, port: int, service: str, debian_package: str) -> None:
    """Skip unless something accepts TCP connections at ``host:port``, naming the service
    and its package (fail in CI, which must start it)."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError:
        pass
    reason = f"{service} is not answering at {host}:{port} (Debian package {debian_package})"
    if IN_CI:
        pytest.fail(f"CI is set but {reason}")
    pytest.skip(reason)
