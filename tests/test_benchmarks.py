"""The benchmark runs end to end at a tiny size (its figures are not checked: no timing
asserts; docs/performance.md quotes a full run)."""

import pytest
import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


@pytest.mark.slow
def test_train_step_benchmark_runs_at_a_tiny_size(tmp_path):
    out = tmp_path / "results.json"
    printed = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "train_step.py"), "--sizes",
         "2x75x10", "--rounds", "1", "--steps", "1", "--no-memory", "--json", str(out)],
        check=True, capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"},
        timeout=600).stdout
    result = json.loads(out.read_text())
    (row,) = result["results"]
    for who in ("ours", "keras"):
        for kind in ("train", "inference"):
            assert row[f"{who}_{kind}_images_per_s"] > 0
        assert row[f"{who}_first_train_step_s"] > 0
    assert 0 < row["ours_train_matmul_fraction"] and result["matmul_gflops"] > 0
    assert "| 2 × 75 × 10 |" in printed and "first train step" in printed
