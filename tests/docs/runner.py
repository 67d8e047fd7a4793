"""Runs the documentation's examples as a newcomer pastes them (pages.py reads them).

What the test provides, and nothing more (the contract with the pages):

- **A fresh server.** One ``entrepot serve`` on a free port of 127.0.0.1, on a database
  of its own, started the way ``make run`` starts it: no ``ENTREPOT_BOOTSTRAP_TOKEN``,
  so it creates the platform-admin key and prints it once (first_key.py). Its one
  setting beyond the defaults is ``ENTREPOT_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8``,
  which docs/webhooks.md tells a reader to start it with to follow along locally.
- **E and TOKEN**, the two variables the quickstart tells a reader to set from what
  ``make run`` shows: the server's URL and the key it printed (read from its output).
  Blocks tagged ``given`` (which set exactly these) are checked, not run.
- **A checkout to stand in.** The shell starts in a scratch directory where ``.venv``
  is the virtualenv running the tests (what ``make run`` created), with that
  virtualenv *off* ``PATH``: a page that runs ``entrepot`` must say to activate it
  (``. .venv/bin/activate``). ``HOME``, ``XDG_CONFIG_HOME`` and ``TMPDIR`` are
  scratch too, so no example reads or writes the profiles of whoever runs the suite.

Shell blocks run in the order given (pages.py's READING_ORDER, or one self-contained
page) in **one** ``bash`` (``set -euo pipefail``, stdin empty), each sourced in turn, so
a variable a block sets is there for every later one, across pages. A block fails
when a command fails, when it prints a problem document (unless tagged ``problems``),
a traceback or the platform-admin key, or when it runs longer than ``BLOCK_SECONDS``
(a whole run: ``TOTAL_SECONDS``); the message names the page, the block and its line,
with the tail of what the shell printed. What the pages leave running (a receiver, a
sync agent) is ended with the session. Python blocks run one program each
(``python -c``), with E and TOKEN in the environment.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.docs.pages import Block, check_given
from tests.e2e.test_serve import serving
from tests.waiting import wait_until

BLOCK_SECONDS = 90.0  # one block
TOTAL_SECONDS = 240.0  # a whole run_shell
TAIL_LINES = 40
PROBLEM = re.compile(r'"type":\s*"https://entrepot\.dev/problems/')
FIRST_KEY = re.compile(r"^\s+(ent_\S+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Ran:
    """A block that ran, and what it printed (stdout and stderr, as a terminal shows them)."""

    block: Block
    output: str


@dataclass(frozen=True, slots=True)
class FirstStart:
    url: str  # E
    key: str  # TOKEN
    log: Path


@contextmanager
def first_start(database_url: str, directory: Path) -> Iterator[FirstStart]:
    """``entrepot serve`` on an empty database; the key it printed on its first start."""
    log = directory / "serve.log"
    env = {
        "ENTREPOT_DATABASE_URL": database_url,
        "ENTREPOT_LOG_FORMAT": "console",
        "ENTREPOT_POOL_MAX_SIZE": "6",  # a light footprint on a shared PostgreSQL
        "ENTREPOT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    }
    with serving(env, log=log) as url:
        found = wait_until(
            lambda: FIRST_KEY.search(log.read_text()), "the first start's key in serve's output"
        )
        yield FirstStart(url, found.group(1), log)


def checkout(directory: Path) -> Path:
    """A scratch directory standing for the checkout: ``.venv`` is the tests' virtualenv."""
    if sys.prefix == sys.base_prefix:
        raise AssertionError("the docs tests run in the virtualenv `make` creates (.venv)")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    return directory


def environment(server: FirstStart, directory: Path) -> dict[str, str]:
    """The environment a reader's shell has: E and TOKEN set, the virtualenv not active."""
    venv_bin = str(Path(sys.prefix) / "bin")
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENTREPOT_", "PYTEST", "VIRTUAL_ENV", "PYTHON"))
    }
    for scratch in ("home", "config", "tmp"):
        (directory / scratch).mkdir(exist_ok=True)
    env.update(
        {
            "PATH": os.pathsep.join(path),
            "HOME": str(directory / "home"),
            "XDG_CONFIG_HOME": str(directory / "config"),
            "TMPDIR": str(directory / "tmp"),
            "E": server.url,
            "TOKEN": server.key,
        }
    )
    return env


def _decoded(captured: bytes | str | None) -> str:
    """What a timed-out run had printed (bytes, whatever ``text=`` said)."""
    if isinstance(captured, bytes):
        return captured.decode(errors="replace")
    return captured or ""


def _tail(lines: list[str]) -> str:
    return "".join(lines[-TAIL_LINES:])


def run_shell(
    blocks: Iterable[Block],
    server: FirstStart,
    directory: Path,
    *,
    block_seconds: float = BLOCK_SECONDS,
    total_seconds: float = TOTAL_SECONDS,
) -> list[Ran]:
    """Run every shell block in one bash session, in order; return those that ran."""
    home = checkout(directory / "checkout")
    env = environment(server, directory)
    done_mark = f"@@docs-test {uuid.uuid4().hex} done"
    # Blocks are sourced from files whose names arrive on fd 3: stdin stays free (and
    # empty) for the commands, so none can swallow the script.
    names_read, names_write = os.pipe()
    driver = (
        f"exec 2>&1 3<&{names_read} {names_read}<&-\n"
        "set -euo pipefail\n"
        f'while IFS= read -r block <&3; do . "$block" 3<&-; echo "{done_mark}"; done\n'
    )
    shell = subprocess.Popen(
        ["bash", "-c", driver],
        cwd=home,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        pass_fds=(names_read,),
        start_new_session=True,
        text=True,
    )
    os.close(names_read)
    names = os.fdopen(names_write, "w")
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert shell.stdout is not None
        for line in shell.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    ran: list[Ran] = []
    output: list[str] = []
    end_of_run = time.monotonic() + total_seconds
    try:
        for number, block in enumerate(blocks, 1):
            if block.tag == "given":
                check_given(block)
                continue
            if block.tag == "skip":
                continue
            script = directory / f"block-{number:03}.sh"
            script.write_text(block.code)
            names.write(f"{script}\n")
            names.flush()
            mine: list[str] = []
            deadline = min(time.monotonic() + block_seconds, end_of_run)
            while True:
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise AssertionError(
                        f"{block.where} still running after {block_seconds:g} s (or the run"
                        f" after {total_seconds:g} s):\n{block.code}\n"
                        f"--- output:\n{_tail(output + mine)}"
                    ) from None
                if line is None:
                    raise AssertionError(
                        f"{block.where} failed (the shell exited, status {shell.wait()}):\n"
                        f"{block.code}\n--- output:\n{_tail(output + mine)}"
                    )
                if line.endswith(f"{done_mark}\n"):  # after output with no newline of its own
                    if rest := line.removesuffix(f"{done_mark}\n"):
                        mine.append(f"{rest}\n")
                    break
                mine.append(line)
            text = "".join(mine)
            if block.tag != "problems" and PROBLEM.search(text):
                raise AssertionError(
                    f"{block.where} answered a problem document (tag it `problems` if that is"
                    f" the point):\n{block.code}\n--- output:\n{_tail(mine)}"
                )
            if block.tag == "problems" and not PROBLEM.search(text):
                raise AssertionError(
                    f"{block.where} is tagged `problems` but answered none:\n{block.code}\n"
                    f"--- output:\n{_tail(mine)}"
                )
            if "Traceback (most recent call last)" in text:
                raise AssertionError(f"{block.where} printed a traceback:\n{_tail(mine)}")
            if server.key in text:
                raise AssertionError(f"{block.where} printed the platform-admin key")
            output.extend(mine)
            ran.append(Ran(block, text))
    finally:
        names.close()
        _stop(shell)
        reader.join(10)
        if shell.stdout is not None:
            shell.stdout.close()
    return ran


def _stop(shell: subprocess.Popen[str]) -> None:
    """End the session and whatever the pages left running in it (receivers, agents)."""
    with suppress(ProcessLookupError):
        os.killpg(shell.pid, signal.SIGTERM)
    try:
        shell.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait(timeout=10)


def run_python(blocks: Iterable[Block], server: FirstStart, directory: Path) -> list[Ran]:
    """Run each python block as a program of its own, in order; return those that ran."""
    home = checkout(directory / "checkout")
    env = environment(server, directory)
    ran: list[Ran] = []
    for block in blocks:
        if block.tag == "skip":
            continue
        try:
            done = subprocess.run(
                [sys.executable, "-c", block.code],
                env=env,
                cwd=home,
                capture_output=True,
                text=True,
                timeout=BLOCK_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as late:
            raise AssertionError(
                f"{block.where} still running after {BLOCK_SECONDS:g} s:\n{block.code}\n"
                f"--- output:\n{_decoded(late.stdout)}{_decoded(late.stderr)}"
            ) from None
        printed = done.stdout + done.stderr
        assert done.returncode == 0, f"{block.where} failed:\n{block.code}\n--- output:\n{printed}"
        assert "Traceback" not in done.stderr, f"{block.where}:\n{done.stderr}"
        ran.append(Ran(block, printed))
    return ran
