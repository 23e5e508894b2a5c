"""Smoke test of the benchmark harness: ``python -m bench --quick --only images`` runs and reports.

Only the shape of the output is checked (rows, numbers, JSON), never a time: timed assertions are
flaky here, and speed is measured by ``make bench``, not asserted by tests.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ["benchmark", "LayerLab", "reference tool", "reference", "ratio", "target", "met?"]
TIME_CELL = re.compile(r"^\d+(\.\d+)? (ms|s)( \([\d,]+ MB/s\))?$")


def _cells(line: str) -> list[str]:
    # split on unescaped pipes only ("\|" appears inside cells)
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_bench_quick_images_reports_a_table_and_json(tmp_path: Path) -> None:
    results = tmp_path / "latest.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "images", "--no-docker", "--json", str(results)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr

    lines = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    assert len(lines) == len(proc.stdout.splitlines()), "stdout carries only the table"
    assert _cells(lines[0]) == COLUMNS
    assert set(lines[1]) <= {"|", "-"}
    rows = [_cells(line) for line in lines[2:]]
    assert [row[0] for row in rows] == [
        "`layerlab images`, 20 images (whole process)",
        "`layerlab images`, 20 images (whole process, no .pyc cache)",
    ]
    for row in rows:
        assert len(row) == len(COLUMNS)
        assert TIME_CELL.match(row[1]), row
        assert row[2] == "`docker images`"
        assert row[3] == "n/a (--no-docker)" and row[4] == "n/a"
        assert row[5] == "< 150 ms"
        assert row[6] in {"yes", "**NO**"}

    report = json.loads(results.read_text())
    assert report["quick"] is True
    by_key = {r["key"]: r for r in report["results"]}
    assert set(by_key) == {"images", "images-no-pyc"}
    for result in by_key.values():
        samples = result["layerlab"]["samples_s"]
        assert len(samples) == report["sizes"]["reps_fast"]
        assert all(isinstance(s, float) and s > 0 for s in samples)
        assert result["layerlab"]["median_s"] > 0
        assert result["reference"]["median_s"] is None and result["ratio"] is None
        assert result["target"] == {"kind": "time_max", "value": 0.15, "text": "< 150 ms"}
        assert result["met"] in (True, False)
