"""Generate ``_sync.py`` (the blocking client) from ``_async.py``.

Run ``python -m entrepot.client._unasync`` after editing ``_async.py``;
``--check`` exits 1 when ``_sync.py`` is stale (``tests/unit/test_sdk_generated.py``
runs it). The rewrite is textual and small on purpose: ``_async.py`` keeps to
the constructs listed here (no ``AsyncGenerator``, ``AsyncIterable``, ``anext``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SOURCE = HERE / "_async.py"
TARGET = HERE / "_sync.py"

HEADER = '''"""The blocking client, :class:`Client`.

GENERATED from ``_async.py`` by ``python -m entrepot.client._unasync``: do not
edit; change ``_async.py`` and regenerate. The decisions both clients make
(retries, backoff, tokens, problems) live in the sans-IO modules ``retry``,
``auth``, ``errors`` and ``request``.
"""
'''

# Exact rewrites first (order matters), then the identifier-level ones.
EXACT: list[tuple[str, str]] = [
    ("import asyncio\n", "import threading\n"),
    ("Callable[[float], Awaitable[None]]", "Callable[[float], None]"),
    ("AsyncIterator, Awaitable, Callable", "Callable, Iterator"),
    ("asyncio.Lock()", "threading.Lock()"),
    ("asyncio.sleep", "time.sleep"),
    ("httpx.AsyncClient", "httpx.Client"),
    ("httpx.AsyncBaseTransport", "httpx.BaseTransport"),
    (".aiter_bytes(", ".iter_bytes("),
    (".aread()", ".read()"),
    (".aclose()", ".close()"),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    ("__aiter__", "__iter__"),
    ("async def ", "def "),
    ("async with ", "with "),
    ("async for ", "for "),
    ("await ", ""),
    ("  # noqa: ASYNC230", ""),
]
PATTERNS: list[tuple[str, str]] = [
    (r"for (\w+) in ([^\n]+):\n(\s+)yield \1\n", r"yield from \2\n"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\b_Async([A-Z]\w*)", r"_\1"),
    (r"\bAsync([A-Z]\w*)", r"\1"),
]


def generate(source: str) -> str:
    body = source.split('"""', 2)[2].lstrip("\n")
    for old, new in EXACT:
        body = body.replace(old, new)
    for pattern, replacement in PATTERNS:
        body = re.sub(pattern, replacement, body)
    return _format(HEADER + "\n" + body)


def _format(text: str) -> str:
    ruff = Path(sys.executable).with_name("ruff")
    command = [str(ruff) if ruff.exists() else "ruff"]
    done = subprocess.run(  # noqa: S603 (ruff, next to this interpreter)
        [*command, "format", "--stdin-filename", str(TARGET), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    fixed = subprocess.run(  # noqa: S603
        [*command, "check", "--select", "I,F401", "--fix", "--stdin-filename", str(TARGET), "-"],
        input=done.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    return fixed.stdout or done.stdout


def main(argv: list[str]) -> int:
    wanted = generate(SOURCE.read_text())
    if "--check" in argv:
        if TARGET.read_text() != wanted:
            print(f"{TARGET} is stale: run python -m entrepot.client._unasync", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
