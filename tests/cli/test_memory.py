"""import and export stream: the command's peak memory does not grow with the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from entrepot.client import Client
from tests.cli.conftest import SCHEMA, Cli, unique

pytestmark = pytest.mark.slow

# Runs the command as a child and prints that child's peak RSS (KiB on Linux).
MEASURE = (
    "import resource, subprocess, sys; "
    "done = subprocess.run([sys.executable, '-m', 'entrepot', *sys.argv[1:]]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
    "sys.exit(done.returncode)"
)


def write_records(path: Path, count: int) -> int:
    filler = "x" * 150
    with path.open("w") as out:
        for n in range(count):
            record = {"sku": f"m{n:08}", "name": filler, "price": n % 100}
            out.write(json.dumps(record, separators=(",", ":")) + "\n")  # as exports write it
    return path.stat().st_size


def test_import_and_export_memory_is_flat(
    cli: Cli, admin: Client, org: str, tmp_path: Path
) -> None:
    def peak(*args: str) -> int:
        env = {k: v for k, v in cli.env().items() if v is not None}
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, *args],
            env={**{k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}, **env},
            capture_output=True,
            text=True,
            timeout=280,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return int(done.stdout.strip().splitlines()[-1])

    results = {}
    for label, count in (("small", 2_000), ("large", 200_000)):
        name = admin.datasets.create(
            unique("mem"), org=org, title="Memory", schema=SCHEMA, primary_key="sku"
        ).name
        source = tmp_path / f"{label}.ndjson"
        size = write_records(source, count)
        imported = peak("import", name, str(source), "-o", "ndjson")
        exported = peak("export", name, "-o", str(tmp_path / f"{label}.out"))
        assert (tmp_path / f"{label}.out").stat().st_size == size
        results[label] = (size, imported, exported)
    (small_size, small_import, small_export), (large_size, large_import, large_export) = (
        results["small"],
        results["large"],
    )
    print("size, import peak KiB, export peak KiB:", results)
    assert large_size > 30 * 2**20
    grown = (large_size - small_size) // 1024
    # Reading the file (or the export) whole would add its size; a stream adds little.
    assert large_import - small_import < grown // 4, results
    assert large_export - small_export < grown // 4, results
