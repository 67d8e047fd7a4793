"""README.md and docs/*.md run, as a newcomer pastes them: every shell block, page after
page in the reading order, in one shell against one fresh server (runner.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.pages import (
    DOCS,
    FROM_THE_CHECKOUT,
    READING_ORDER,
    ROOT,
    SELF_CONTAINED,
    Block,
    blocks,
)
from tests.docs.runner import FirstStart, run_shell

pytestmark = pytest.mark.slow


def test_every_page_is_read_somewhere() -> None:
    pages = {f"docs/{page.name}" for page in DOCS.glob("*.md")} | {"README.md"}
    assert pages == set(READING_ORDER) | set(SELF_CONTAINED) | set(FROM_THE_CHECKOUT)
    assert len(READING_ORDER) == len(set(READING_ORDER))


def test_the_readme_lists_the_pages_in_reading_order() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Documentation", 1)[1]
    listed = [f"docs/{name}" for name in re.findall(r"\]\(docs/([a-z-]+\.md)\)", section)]
    chained = [page for page in READING_ORDER if page != "README.md"]
    assert [page for page in listed if page in chained] == chained


# The only examples not run, each for the reason its tag gives: a skip is a decision,
# made here as well as on the page. Each is named by its page and its first line.
SKIPPED = {
    ("README.md", "make run    # set up and start the platform on an embedded PostgreSQL"),
    ("docs/quickstart.md", "make run"),
    ("docs/access.md", 'ADMIN=$(entrepot admin create-key --name "ops recovery")'),
    ("docs/sync.md", "mariadb -u root -e 'CREATE DATABASE analytics"),
    ("docs/operations.md", "createdb entrepot"),
    ("docs/operations.md", "ENTREPOT_METRICS_PORT=9100 ENTREPOT_METRICS_HOST=10.0.0.5"),
    ("docs/jetstream.md", "ENTREPOT_NATS_URL=nats://127.0.0.1:4222 entrepot serve"),
    ("docs/jetstream.md", "entrepot admin streams add products"),
    ("docs/ha.md", "deploy/local-ha/setup.sh"),
    ("docs/ha.md", "make chaos"),
    ("docs/ha.md", ".venv/bin/pytest tests/chaos/test_rolling.py"),
}


def test_only_the_listed_blocks_are_skipped() -> None:
    every = [block for page in (*READING_ORDER, *SELF_CONTAINED) for block in blocks(page)]
    skipped = [block for block in every if block.tag == "skip"]
    for block in skipped:
        first = block.code.splitlines()[0]
        assert any(page == block.page and first.startswith(start) for page, start in SKIPPED), (
            f"{block.where} is skipped ({block.reason}) but not listed in SKIPPED"
        )
    assert len(skipped) == len(SKIPPED)


# Tools a reader may not have: what the pages need is Python, make, curl and a shell.
NOT_REQUIRED = ("jq", "yq", "wget", "http", "httpie", "sqlite3", "psql", "node", "docker")
COMMAND = re.compile(r"(?:^|[|;&(]|\$\(|\bthen|\bdo)\s*(?:[A-Z_]+=\S*\s+)*([a-z][\w.-]*)")


def test_the_examples_use_only_tools_the_requirements_bring() -> None:
    for page in (*READING_ORDER, *SELF_CONTAINED):
        for block in blocks(page):
            if block.lang != "shell" or block.tag in ("skip", "given"):
                continue
            for line in block.code.splitlines():
                code = re.sub(r"(^|\s)#.*$", "", line)
                used = set(COMMAND.findall(code)) & set(NOT_REQUIRED)
                assert not used, f"{block.where} uses {', '.join(sorted(used))}: {line.strip()}"


def test_the_pages_run_in_reading_order(first_server: FirstStart, tmp_path: Path) -> None:
    chain: list[Block] = [
        block for page in READING_ORDER for block in blocks(page) if block.lang == "shell"
    ]
    ran = run_shell(chain, first_server, tmp_path)
    for done in ran:
        print(f"--- {done.block.where}\n{done.output}")
    assert {done.block.page for done in ran} >= {
        "README.md",
        "docs/quickstart.md",
        "docs/datasets-and-records.md",
        "docs/bulk.md",
        "docs/access.md",
        "docs/limits.md",
        "docs/sync.md",
        "docs/webhooks.md",
    }
