"""The container image, without a container engine: what the Dockerfile runs, run here.

The wheel is built by the Dockerfile's build step from exactly what its COPY lines take
(through the .dockerignore), installed by its install step into a fresh virtualenv, and
started with its ENTRYPOINT and CMD under its ENV against a fresh database; its
HEALTHCHECK is run against that server. The steps are read from the Dockerfile (the
``# image-test:`` marks), so the test cannot drift from it. Slow (a wheel build and an
install from the package index, about a minute): marked ``image``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.deploy import dockerfile, facts
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.image]

ROOT = facts.ROOT
DOCKERFILE = ROOT / "Dockerfile"
INSTALL_TIMEOUT = 240  # the dependencies come from the package index
START_TIMEOUT = 60
STOP_TIMEOUT = facts.graceful_shutdown_seconds() + 15
TOKEN = "image-test-bootstrap-token-" + "x" * 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Installed:
    """The image's filesystem, laid out under a test directory."""

    venv: Path
    workdir: Path
    env: dict[str, str]  # the host's environment, less ENTREPOT_*, plus the image's ENV
    entrypoint: list[str]
    cmd: list[str]


def host_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}


def run(argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> str:
    done = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def build_context(target: Path) -> Path:
    """The build stage's WORKDIR after its COPY lines, from the .dockerignore'd context."""
    build = dockerfile.parse(DOCKERFILE).stage("build")
    rules = dockerfile.ignore_rules(ROOT / ".dockerignore")
    workdir = target / "src"
    workdir.mkdir(parents=True)
    for sources, destination in dockerfile.copies(build):
        into = workdir / destination
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                for path in sorted(origin.rglob("*")):
                    relative = path.relative_to(ROOT).as_posix()
                    if path.is_file() and not dockerfile.ignored(relative, rules):
                        copied = into / path.relative_to(origin)
                        copied.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, copied)
            else:
                assert not dockerfile.ignored(source, rules), f"{source} is .dockerignore'd"
                into.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, into / origin.name)
    return workdir


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    parsed = dockerfile.parse(DOCKERFILE)
    root = tmp_path_factory.mktemp("image")
    wheels = root / "wheels"
    # The base image's PATH, with this interpreter first for the steps' python and pip.
    base_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"

    build = parsed.stage("build")
    context = build_context(root)
    build_env = host_env() | build.args({"WHEELS": str(wheels)}, parsed.global_args)
    build_env |= build.env({"PATH": base_path}, {})
    run(
        ["/bin/sh", "-c", dockerfile.run_command(build.marked("build"))],
        env=build_env,
        cwd=context,
        timeout=INSTALL_TIMEOUT,
    )
    assert [p.name for p in wheels.glob("entrepot-*.whl")], "the build step made the wheel"

    final = parsed.final
    venv = root / "venv"
    image_env = final.env({"PATH": base_path}, {"VIRTUAL_ENV": str(venv)})
    install_env = host_env() | final.args({"WHEELS": str(wheels)}, parsed.global_args)
    run(
        ["/bin/sh", "-c", dockerfile.run_command(final.marked("install"))],
        env=install_env | image_env,
        cwd=root,
        timeout=INSTALL_TIMEOUT,
    )
    (workdir_instruction,) = final.all("WORKDIR")
    assert workdir_instruction.text == final.env({}, {})["VIRTUAL_ENV"], "WORKDIR is the venv"
    (entrypoint,) = final.all("ENTRYPOINT")
    (cmd,) = final.all("CMD")
    env = host_env() | image_env
    # The container's HOME (the user's, /nonexistent) and /tmp (an emptyDir or tmpfs).
    env |= {"HOME": str(root / "nonexistent"), "TMPDIR": str(root / "tmp")}
    (root / "tmp").mkdir()
    return Installed(venv, venv, env, dockerfile.exec_form(entrypoint), dockerfile.exec_form(cmd))


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in directory.rglob("*")
        if not p.is_symlink()
    }


@contextmanager
def serving(
    installed: Installed, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The image's ENTRYPOINT + CMD, until it answers /readyz 200; SIGTERM at the end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*installed.entrypoint, *installed.cmd],
            env=env,
            cwd=installed.workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{env['ENTREPOT_PORT']}"

    def ready() -> bool:
        assert proc.poll() is None, f"serve exited {proc.returncode}:\n{log.read_text()}"
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, "the image's serve answers /readyz 200", within=START_TIMEOUT)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


def healthcheck(installed: Installed, env: dict[str, str]) -> int:
    """The HEALTHCHECK's command, as the engine runs it (no shell), bounded by its timeout."""
    instruction = dockerfile.parse(DOCKERFILE).final.all("HEALTHCHECK")[0]
    timeout = float(dockerfile.healthcheck_options(instruction)["timeout"].rstrip("s"))
    done = subprocess.run(
        dockerfile.exec_form(instruction),
        env=env,
        cwd=installed.workdir,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode


def test_the_image_migrates_serves_and_passes_its_healthcheck(
    installed: Installed, fresh_database: object
) -> None:
    url = asyncio.run(fresh_database("entrepot_image"))  # type: ignore[operator]
    port = free_port()
    # What `docker run -e` adds: the store, the first admin key, a port free on this host.
    env = installed.env | {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": TOKEN,
        "ENTREPOT_PORT": str(port),
    }
    assert shutil.which(installed.entrypoint[0], path=env["PATH"]) == str(
        installed.venv / "bin" / installed.entrypoint[0]
    ), "the entrypoint is the one installed in the image's virtualenv"
    migrated = run(
        [*installed.entrypoint, "migrate"], env=env, cwd=installed.workdir, timeout=START_TIMEOUT
    )
    assert "Applied migrations: [" in migrated, migrated

    before = snapshot(installed.venv)
    base = f"http://127.0.0.1:{port}"
    log = installed.venv.parent / "serve.log"
    with serving(installed, env, log) as proc:
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{base}/readyz", timeout=5).json()["checks"]["store"] == "ok"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        created = httpx.post(
            f"{base}/v1/orgs", json={"name": "acme", "title": "Acme"}, headers=auth, timeout=10
        )
        assert created.status_code == 201, created.text
        assert httpx.get(f"{base}/v1/orgs/acme", headers=auth, timeout=10).status_code == 200
        assert httpx.get(f"{base}/v1/orgs/acme", timeout=10).status_code == 401
        assert healthcheck(installed, env) == 0, "the HEALTHCHECK passes on a live server"
    assert proc.returncode == 0, log.read_text()
    assert healthcheck(installed, env) != 0, "the HEALTHCHECK fails with no server"
    assert snapshot(installed.venv) == before, "serve wrote into the image's filesystem"
    assert not (installed.venv.parent / "nonexistent").exists(), "serve wrote into HOME"
