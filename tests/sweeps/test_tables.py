"""A sweep's tables and plots: the statistics against a hand computation, the plots' inputs
against the table's numbers, core splits footnoted."""

import csv
import io
import json
import math
import shutil
import subprocess

import pytest

from inception_flax.sweeps import plots, tables
from tests.helpers import write_made_up


def test_report_statistics_by_hand(tmp_path):
    # Top-1 errors (%): base 10, 12, 14 (mean 12, std 2); new 7, 9, 11 (mean 9, std 2).
    write_made_up(str(tmp_path), {"base": [0.90, 0.88, 0.86], "new": [0.93, 0.91, 0.89],
                                  "partial": [0.95, None, None]})
    rows = {r["variant"]: r for r in tables.write(str(tmp_path))}
    mean, std, n = rows["new"]["top1"]
    assert (round(mean, 9), round(std, 9), n) == (9.0, 2.0, 3)
    # Two variants against the baseline: each difference at 1 - 0.05/2 = 97.5%. The records
    # carry no config, so their data order is not known: Welch, with equal variances and n = 3
    # each: se = sqrt(4/3 + 4/3), 4 degrees of freedom, t(0.9875, 4) = 3.495406 (tables).
    c = rows["new"]["comparison"]
    half = 3.495406 * math.sqrt(8 / 3)
    assert c["test"] == "Welch" and c["diff"] == pytest.approx(-3.0)
    assert (c["low"], c["high"]) == pytest.approx((-3.0 - half, -3.0 + half), abs=1e-5)
    assert c["verdict"] == "undecided" and rows["partial"]["comparison"]["verdict"] == "undecided"
    assert rows["partial"]["status"] == "1 done, 2 not run"
    assert math.isnan(rows["partial"]["top1"][1])  # one seed: no spread
    markdown = (tmp_path / "results.md").read_text()
    assert "9.00 ± 2.00 (n=3)" in markdown and "-3.00 [-8.71, +2.71] (Welch, 3+3)" in markdown
    assert "21.2" in markdown and "Δ top-1 [97.5% CI]" in markdown
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 4 and csv_lines[0].startswith("variant,params,macs")
    # The 95% t-interval of a mean of 3 with std 2: ± t(0.975, 2) · 2 / √3, t = 4.302653.
    ci = 4.302653 * 2 / math.sqrt(3)
    assert rows["new"]["top1_ci"] == pytest.approx((9.0 - ci, 9.0 + ci), abs=1e-5)
    assert f"[{9 - ci:.2f}, {9 + ci:.2f}]" in markdown
    # The plot draws the table's numbers: the CSV's interval bounds, no bar for one seed.
    table = {r["variant"]: r for r in csv.DictReader(io.StringIO("\n".join(csv_lines)))}
    for point in plots.accuracy_points(list(rows.values())):
        written = table[point["variant"]]
        assert point["top1"] == pytest.approx(float(written["top1_err_mean"]))
        if point["n"] > 1:
            assert (point["low"], point["high"]) == pytest.approx(
                (float(written["top1_err_ci_low"]), float(written["top1_err_ci_high"])))
        else:
            assert math.isnan(point["low"]) and written["top1_err_ci_low"] == "nan"
    assert [p["baseline"] for p in plots.accuracy_points(list(rows.values()))] == \
        [True, False, False]
    assert "| new (a) |" in markdown and "(a) new: a reconstruction" in markdown
    assert (tmp_path / "accuracy_vs_macs.png").stat().st_size > 1000
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed; the LaTeX table was not compiled")
    document = ("\\documentclass{article}\\usepackage{booktabs}\\begin{document}"
                + (tmp_path / "results.tex").read_text() + "\\end{document}")
    (tmp_path / "doc.tex").write_text(document)
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "doc.tex"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]


def test_training_curves_spread_over_seeds(tmp_path):
    write_made_up(str(tmp_path), {"base": [0.9, 0.8], "new": [0.9, 0.9]})
    for seed, (losses, evals) in enumerate([((2.0, 1.0), (0.5, 0.8)),
                                            ((4.0, 2.0), (0.7, 0.9))]):
        with open(tmp_path / "base" / f"seed{seed}" / "metrics.jsonl", "w") as f:
            for step, loss in zip((10, 20, 30), losses + (0.5,) * seed):  # seed 1 logs more
                f.write(json.dumps({"step": step, "loss": loss}) + "\n")
            for step, accuracy in zip((10, 20), evals):
                f.write(json.dumps({"step": step, "ema_top1": accuracy}) + "\n")
    bands = plots.curve_bands(tables.collect(str(tmp_path)))
    assert set(bands) == {"base"}  # "new" logged nothing
    # A run that logged its loss but was not evaluated yet (stopped by a preemption).
    with open(tmp_path / "new" / "seed0" / "metrics.jsonl", "w") as f:
        f.write(json.dumps({"step": 10, "loss": 2.0}) + "\n")
    bands = plots.curve_bands(tables.collect(str(tmp_path)))
    assert bands["new"]["loss"]["mean"] == [2.0] and bands["new"]["eval"]["steps"] == []
    loss, evals = bands["base"]["loss"], bands["base"]["eval"]
    assert loss["steps"] == [10, 20] and loss["n"] == 2  # the steps every seed logged
    assert loss["mean"] == [3.0, 1.5] and loss["low"] == [2.0, 1.0] and loss["high"] == [4.0, 2.0]
    assert evals["mean"] == pytest.approx([40.0, 15.0])  # errors: (50, 30) and (20, 10)
    assert evals["low"] == pytest.approx([30.0, 10.0])
    tables.write(str(tmp_path))
    assert (tmp_path / "training_curves.png").stat().st_size > 1000


def test_equal_records_give_a_byte_identical_report(tmp_path):
    """A grouped sweep's records equal to a sweep's records alone give the same tables."""
    written = []
    for k in (1, 3):
        workdir = tmp_path / f"k{k}"
        workdir.mkdir()
        write_made_up(str(workdir), {"base": [0.90, 0.88, 0.86], "new": [0.93, 0.91, 0.89]})
        plan = json.load(open(workdir / "sweep.json"))
        plan["sweep"]["seeds_per_program"] = k
        json.dump(plan, open(workdir / "sweep.json", "w"))
        tables.write(str(workdir))
        written.append([(workdir / name).read_bytes()
                        for name in ("results.md", "results.csv", "results.tex")])
    assert written[0] == written[1]


def test_a_table_of_runs_under_different_core_splits_says_so(tmp_path):
    write_made_up(str(tmp_path), {"base": [0.90, 0.88], "new": [0.93, 0.91]})

    def set_cores(cores_by_run):
        for (variant, seed), cores in cores_by_run.items():
            path = tmp_path / variant / f"seed{seed}" / "final.json"
            path.write_text(json.dumps(dict(json.load(open(path)), cpu_cores=cores)))
    set_cores({("base", 0): 2, ("base", 1): 2, ("new", 0): 1, ("new", 1): 1})
    tables.write(str(tmp_path))
    note = "Runs trained under different CPU core splits (1 core(s): new; 2 core(s): base)."
    assert note in (tmp_path / "results.md").read_text()
    assert note in (tmp_path / "results.tex").read_text()
    assert [r["cpu_cores"] for r in csv.DictReader(open(tmp_path / "results.csv"))] == ["2", "1"]
    set_cores({("new", 0): 2, ("new", 1): 2})
    tables.write(str(tmp_path))
    assert "core splits" not in (tmp_path / "results.md").read_text()
    # A run on an accelerator is not split by CPU cores.
    path = tmp_path / "new" / "seed1" / "final.json"
    path.write_text(json.dumps(dict(json.load(open(path)), cpu_cores=16, backend="gpu")))
    tables.write(str(tmp_path))
    assert "core splits" not in (tmp_path / "results.md").read_text()
