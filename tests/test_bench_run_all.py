"""`make bench`'s runner: runs the chosen benchmarks as processes and reports each one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "bench" / "run_all.py"), *args], capture_output=True,
                          text=True, timeout=600, cwd=REPO)


def test_runs_a_benchmark_and_writes_its_figures(tmp_path):
    proc = _run("--out", str(tmp_path), "--only", "features", "--quick")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert list(summary) == ["features"] and summary["features"]["rc"] == 0
    figures = json.loads((tmp_path / "features.json").read_text())
    assert figures  # the benchmark's own JSON, written where the runner asked
    assert (tmp_path / "features.log").stat().st_size > 0


def test_unknown_benchmark_is_a_clear_error(tmp_path):
    proc = _run("--out", str(tmp_path), "--only", "features,nope")
    assert proc.returncode == 2 and "unknown benchmark(s) ['nope']" in proc.stderr
    assert not (tmp_path / "summary.json").exists()
