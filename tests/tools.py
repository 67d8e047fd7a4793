"""What a suite needs from the machine (promtool, kubectl, haproxy...): a tool CI installs
(.ci/run), else a skip naming its Debian package."""

from __future__ import annotations

import shutil

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
