"""Smoke test of the benchmark suite: `python -m benchmarks.run --quick` runs every quick case and
reports positive numbers. Never a speed threshold: timings depend on the machine and its load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUICK_CASES = ["train_small_multi30k", "train_small_shape", "inference", "memory"]


@pytest.mark.slow  # runs the benchmark suite in a subprocess
def test_quick_run_reports_positive_numbers_for_every_case(multi30k: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--json", str(out)]
    cmd += ["--data-dir", str(multi30k)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ratio" in done.stdout  # the table was printed

    result = json.loads(out.read_text())
    assert result["quick"] is True and "--quick" in result["command"]
    machine = result["machine"]
    assert machine["torch"] and machine["cpu_model"] and machine["cpu_capability"]
    assert machine["threads"] >= 1
    assert [case["name"] for case in result["cases"]] == QUICK_CASES

    for case in result["cases"]:
        rows = {row["candidate"]: row for row in case["rows"]}
        assert len(rows) >= 2, case["name"]
        for name, row in rows.items():
            where = f"{case['name']}/{name}"
            assert row["ratio_vs_baseline"] > 0, where
            if case["name"] == "memory":
                assert row["peak_mib"] > 0, where
                continue
            assert len(row["seconds"]) >= 5 and min(row["seconds"]) > 0, where
            assert row["tokens"] > 0 and row["tokens_per_s"] > 0, where
            if case["name"].startswith("train"):
                assert row["mfu"] > 0, where
        if case["name"].startswith("train"):
            assert set(rows) == {"ours", "nn.Transformer"}
            assert case["matmul_peak_flops_median"] > 0
    inference = next(c for c in result["cases"] if c["name"] == "inference")
    assert {"greedy_cached", "beam4_cached", "greedy_recompute_nn"} <= {
        row["candidate"] for row in inference["rows"]
    }
