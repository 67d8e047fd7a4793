"""The client commands (entrepot.commands, on the SDK) keep their first behaviour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from entrepot.client import Client
from tests.sdk.conftest import ADMIN


def entrepot(server: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    env.update({"ENTREPOT_URL": server, "ENTREPOT_TOKEN": ADMIN})
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_datasets_import_and_export_commands(
    server: str, admin: Client, keyed_dataset: str, tmp_path: Path
) -> None:
    listed = entrepot(server, "datasets", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert keyed_dataset in {json.loads(line)["name"] for line in listed.stdout.splitlines()}

    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps({"sku": f"c{n}", "name": "N"}) + "\n" for n in range(50)))
    imported = entrepot(server, "import", keyed_dataset, str(source))
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["inserted"] == 50

    out = tmp_path / "out.ndjson"
    exported = entrepot(server, "export", keyed_dataset, "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    exported_records = [json.loads(line) for line in out.read_text().splitlines()]
    source_records = [json.loads(line) for line in source.read_text().splitlines()]
    assert sorted(exported_records, key=str) == sorted(source_records, key=str)
    assert [list(r) for r in exported_records] == [["sku", "name"]] * 50  # declared order

    missing = entrepot(server, "datasets", "get", "no-such-dataset")
    assert missing.returncode == 1
    assert "404" in missing.stderr
    assert "Traceback" not in missing.stderr
