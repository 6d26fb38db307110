"""`python -m inception_flax.cost`, the cost model's command line: JSON, table, CSV and Markdown,
errors in one sentence, the grids and the warnings for kernels larger than their grid."""

import contextlib
import io
import json
import subprocess
import sys

import pytest

from inception_flax import cost as cost_cli


def run_cli(*args):
    """`python -m inception_flax.cost ARGS`, in this process (`cost_cli.main`): its exit code and
    what it printed. The first test runs the module's command line in a process of its own."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cost_cli.main(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.mark.slow
def test_cli_json_and_table():
    result = subprocess.run([sys.executable, "-m", "inception_flax.cost", "--preset",
                             "inception_v3", "--image-size", "299", "--format", "json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["total"]) >= {"params", "macs"}
    assert 5.6e9 <= report["total"]["macs"] <= 5.8e9
    assert report["total"]["params"] + report["total"]["batch_norm_statistics"] == 23_851_784
    names = [layer["name"] for layer in report["layers"]]
    assert names[0] == "Stem/Conv2d_1a_3x3" and "Mixed_5c/Branch_1/Conv_1_0c_5x5" in names
    assert sum(l["macs"] for l in report["layers"] if not l["training_only"]) == \
        report["total"]["macs"]
    table = run_cli("--preset", "inception_v3", "--image_size=299")  # the new spelling
    assert table.returncode == 0
    assert "Mixed_7c/Branch_3/Conv2d_0b_1x1" in table.stdout
    assert f"{report['total']['macs']:,}" in table.stdout
    csv = run_cli("--preset", "inception_v3", "--image-size", "150x200", "--format", "csv")
    lines = csv.stdout.strip().splitlines()
    assert lines[0].startswith("layer,type") and len(lines) == len(names) + 1
    markdown = run_cli("--preset", "inception_v3", "--format", "markdown",
                       "--set", "module_17_n=5")
    assert "Conv2d_0b_1x5" in markdown.stdout and markdown.stdout.startswith("| layer")


@pytest.mark.slow
def test_cli_errors_are_one_sentence():
    bad_field = run_cli("--set", "depth=2")
    assert bad_field.returncode == 2 and "unknown InceptionConfig field" in bad_field.stderr
    assert "depth_multiplier" in bad_field.stderr  # names the valid ones
    too_small = run_cli("--image-size", "60")
    assert too_small.returncode == 2 and "at least 75×75" in too_small.stderr
    bad_value = run_cli("--set", "stem=9x9")
    assert bad_value.returncode == 2 and "'7x7'" in bad_value.stderr


@pytest.mark.slow
def test_grids_and_the_warning_for_kernels_larger_than_their_grid():
    small = run_cli("--image-size", "75", "--set", "module_17_n=7", "--format", "json")
    assert small.returncode == 0
    assert json.loads(small.stdout)["module_grids"] == {
        "35×35 modules": [7, 7], "17×17 modules": [3, 3], "8×8 modules": [1, 1]}
    warnings = small.stderr.strip().splitlines()
    assert any("17×17 modules (Mixed_6b-6e) act on a 3×3 grid, smaller than their 1×7 and 7×1"
               in line for line in warnings)
    assert all(line.startswith("warning: at 75×75 input") for line in warnings)
    large = run_cli("--image-size", "299", "--set", "module_17_n=7")
    assert large.returncode == 0 and large.stderr == ""
    assert "grids at 299×299: 35×35 modules (Mixed_5b-5d) on 35×35, 17×17 modules " \
           "(Mixed_6b-6e) on 17×17, 8×8 modules (Mixed_7b-7c) on 8×8" in large.stdout


@pytest.mark.slow
def test_cli_help_and_unknown_flags():
    helped = run_cli("--help")
    assert helped.returncode == 0
    assert all(flag in helped.stdout for flag in ("--image_size", "--match_macs", "--set",
                                                  "--preset", "--format"))
    unknown = run_cli("--image-sizes", "75")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "Unknown command line flag 'image_sizes'" in unknown.stderr
