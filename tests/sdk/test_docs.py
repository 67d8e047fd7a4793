"""docs/sdk.md runs: every python block, in order, against a fresh server of its own
(tests/docs/runner.py)."""

from __future__ import annotations

from pathlib import Path

from tests.docs.pages import ROOT, blocks
from tests.docs.runner import FirstStart, run_python

PAGE = "docs/sdk.md"


def test_the_page_has_an_example_for_every_namespace() -> None:
    text = (ROOT / PAGE).read_text()
    for used in (
        "api.orgs.",
        "api.datasets.",
        "api.records.",
        "api.import_records(",
        "api.export(",
        "api.changes.follow(",
        "api.apps.",
        "api.keys.",
        "api.access_requests.",
        "api.grants.",
        "api.webhooks.",
        "verify_webhook(",
        "api.audit.",
        "api.apps.usage(",
        "ClientCredentials(",
        "AsyncClient(",
    ):
        assert used in text, used


def test_every_python_block_runs_in_order(first_server: FirstStart, tmp_path: Path) -> None:
    ran = run_python([b for b in blocks(PAGE) if b.lang == "python"], first_server, tmp_path)
    assert len(ran) >= 10
