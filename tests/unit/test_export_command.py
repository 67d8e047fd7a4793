"""`entrepot export`: the command sends the export options the server expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from entrepot.client import commands
from entrepot.client.http import Client


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Requests the command made, answered by a stand-in server."""
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(
            200,
            content=b"code\r\n'=1\r\n",
            headers={"content-type": "text/csv", "x-entrepot-seq": "7"},
        )

    def client(url: str, token: str | None, **kwargs: Any) -> Client:
        return Client(url, token, transport=httpx.MockTransport(answer), **kwargs)

    monkeypatch.setattr(commands, "Client", client)
    return requests


def run(*args: str) -> Any:
    app = typer.Typer()
    app.command("export")(commands.export)
    app.command("unused")(lambda: None)  # two commands: the name is an argument
    return CliRunner().invoke(app, ["export", *args], env={"COLUMNS": "200"})


def flat(output: str) -> str:
    """Output text without rich's panel borders and line wrapping."""
    return " ".join(output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())


def test_spreadsheet_safe_asks_for_the_spreadsheet_style(
    sent: list[httpx.Request], tmp_path: Path
) -> None:
    out = tmp_path / "p.csv"
    result = run("products", "--format", "csv", "--spreadsheet-safe", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert [r.url.path for r in sent] == ["/v1/datasets/products/export"]
    assert dict(sent[0].url.params) == {"csv": "spreadsheet", "format": "csv"}
    assert out.read_bytes() == b"code\r\n'=1\r\n"


def test_csv_is_exact_by_default(sent: list[httpx.Request], tmp_path: Path) -> None:
    result = run("products", "--format", "csv", "-o", str(tmp_path / "p.csv"))
    assert result.exit_code == 0, result.output
    assert dict(sent[0].url.params) == {"format": "csv"}


def test_spreadsheet_safe_needs_csv(sent: list[httpx.Request]) -> None:
    result = run("products", "--spreadsheet-safe")
    assert result.exit_code != 0
    assert "--spreadsheet-safe needs --format csv" in flat(result.output)
    assert sent == []


def test_the_help_says_what_the_flag_costs() -> None:
    result = run("--help")
    assert "--spreadsheet-safe" in result.output
    assert "no longer imports back unchanged" in flat(result.output)
