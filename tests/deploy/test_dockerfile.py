"""The Dockerfile and .dockerignore, read: what the image is, before anything is built.
(tests/deploy/test_image.py runs its steps.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy import dockerfile, facts

DOCKERFILE = facts.ROOT / "Dockerfile"


def test_the_image_is_a_non_root_entrepot_serve_on_all_interfaces() -> None:
    parsed = dockerfile.parse(DOCKERFILE)
    assert [s.base for s in parsed.stages] == ["python:3.11-slim", "python:3.11-slim"]
    final = parsed.final
    env = final.env({"PATH": "/usr/local/bin"}, {})
    assert dockerfile.exec_form(final.all("ENTRYPOINT")[0]) == ["entrepot"]
    assert dockerfile.exec_form(final.all("CMD")[0]) == ["serve"]
    (user,) = final.all("USER")
    uid, _, gid = user.text.partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
    assert uid.isdigit(), user.text
    assert gid.isdigit(), user.text
    assert int(uid) > 0, "not root"
    assert env["ENTREPOT_HOST"] == "0.0.0.0"
    assert [e.text for e in final.all("EXPOSE")] == [env["ENTREPOT_PORT"]]
    assert "ENTREPOT_DATABASE_URL" not in env, "a URL is given at run time, never baked in"
    # No embedded PostgreSQL in the image: without a URL, serve fails making its data
    # directory where a non-root user cannot (at the root), and the path names the setting.
    data_dir = Path(env["ENTREPOT_DATA_DIR"])
    assert data_dir.parent == Path("/")
    assert "ENTREPOT_DATABASE_URL" in data_dir.name
    (useradd,) = (r for r in final.all("RUN") if r.text.startswith("useradd"))
    assert "--home-dir /nonexistent" in useradd.text
    assert f"--uid {uid}" in useradd.text
    assert {k for k in env if k.startswith("ENTREPOT_")} <= facts.SETTINGS
    assert env["PATH"].startswith(f"{env['VIRTUAL_ENV']}/bin:"), "entrepot is the venv's"
    options = dockerfile.healthcheck_options(final.all("HEALTHCHECK")[0])
    assert float(options["timeout"].rstrip("s")) < float(options["interval"].rstrip("s"))


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("pyproject.toml", True),
        ("README.md", True),
        ("src/entrepot/cli.py", True),
        ("src/entrepot/store/migrations/0001_core.sql", True),
        ("src/entrepot/limits/bucket.lua", True),
        ("src/entrepot/__pycache__/cli.cpython-311.pyc", False),
        ("src/entrepot.egg-info/PKG-INFO", False),
        (".venv/bin/python", False),
        ("data/pg/postgresql.conf", False),
        ("tests/conftest.py", False),
        ("deploy/compose/.env", False),
        (".git/HEAD", False),
    ],
)
def test_the_build_context_is_the_package_sources_only(path: str, sent: bool) -> None:
    rules = dockerfile.ignore_rules(facts.ROOT / ".dockerignore")
    assert dockerfile.ignored(path, rules) is not sent


def test_every_file_the_wheel_ships_is_in_the_build_context() -> None:
    """The package data pyproject.toml names (migrations, Lua scripts) reach the build."""
    rules = dockerfile.ignore_rules(facts.ROOT / ".dockerignore")
    package = facts.ROOT / "src" / "entrepot"
    shipped = [*package.glob("store/migrations/*.sql"), *package.glob("limits/*.lua")]
    assert shipped
    for path in shipped:
        assert not dockerfile.ignored(path.relative_to(facts.ROOT).as_posix(), rules), path


def test_the_install_step_mounts_the_wheels_the_build_step_made() -> None:
    """BuildKit's bind mount carries the wheel across, so no layer of the image holds it."""
    parsed = dockerfile.parse(DOCKERFILE)
    built_into = parsed.stage("build").args({}, parsed.global_args)["WHEELS"]
    install = parsed.final.marked("install")
    installs_from = parsed.final.args({}, parsed.global_args)["WHEELS"]
    mounts = [
        dict(part.split("=", 1) for part in word.removeprefix("--mount=").split(","))
        for word in install.text.split()
        if word.startswith("--mount=")
    ]
    bind = next(m for m in mounts if m["type"] == "bind")
    assert bind == {
        "type": "bind",
        "from": "build",
        "source": built_into,
        "target": installs_from,
    }
    assert '"$WHEELS"/entrepot-' in dockerfile.run_command(install)
    assert not [c for c in parsed.final.all("COPY")], "nothing is copied into the image"
