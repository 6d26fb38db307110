"""The package's layers (faces, sweeps, run, model, utils) import only downwards, and configs
and experiments are data: `pyproject.toml`'s import-linter contracts, run by `lint-imports`.
A copy of the code with a model module importing a sweep module shows the contract breaks."""

import os
import shutil
import subprocess
import sys

from tests.helpers import ROOT

LINT = os.path.join(os.path.dirname(sys.executable), "lint-imports")


def lint(root):
    return subprocess.run([LINT], cwd=root, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=root))


def test_the_layers_are_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_a_model_module_that_imports_a_sweep_module_breaks_them(tmp_path):
    for name in ("inception_flax", "configs", "experiments"):
        shutil.copytree(os.path.join(ROOT, name), tmp_path / name,
                        ignore=shutil.ignore_patterns("results", "__pycache__"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), tmp_path)
    cost = tmp_path / "inception_flax" / "model" / "cost.py"
    cost.write_text(cost.read_text() + "\nfrom inception_flax.sweeps import plan  # noqa\n")
    result = lint(str(tmp_path))
    assert result.returncode == 1
    assert "inception_flax.model is not allowed to import inception_flax.sweeps" in result.stdout
    assert "- inception_flax.model.cost -> inception_flax.sweeps.plan" in result.stdout
