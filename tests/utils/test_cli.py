"""The command-line conventions: a repeated config flag replaced, not appended; a flag absl or
ml_collections cannot take in one sentence; an error's exit code; help with exit code 0."""

import errno
import os
import subprocess
import sys

import pytest
from absl import flags

from inception_flax.utils import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_repeated_config_flag_is_replaced_not_appended():
    argv = ["run_experiment.py", "--config", "q.py", "--config.sweep.seeds=(0,1)", "--workdir",
            "w", "--config.sweep.seeds", "(0,)", "--config.seed=3", "--config.seed", "-1"]
    assert cli.last_wins(argv, "--config.") == [
        "run_experiment.py", "--config", "q.py", "--workdir", "w", "--config.sweep.seeds",
        "(0,)", "--config.seed", "-1"]


def test_a_flag_that_cannot_be_taken_is_one_sentence_and_exit_code_2(capsys):
    values = flags.FlagValues()
    flags.DEFINE_integer("workers", 1, "", flag_values=values)
    parse = cli.absl_parser(values)
    for argv, message in ((["--workers=x"], "flag --workers=x: invalid literal for int()"),
                          (["--nosuch"], "Unknown command line flag 'nosuch'")):
        with pytest.raises(SystemExit) as exited:
            parse(["run_experiment.py", *argv])
        err = capsys.readouterr().err
        assert exited.value.code == cli.EXIT_BAD_INPUT and err.count("\n") == 1
        assert err.startswith(f"error: {message}") and err.strip().endswith("for its fields.")
    # ml_collections' error for a config field that does not exist (run_experiment.py's own
    # path is tested end to end in tests/run/test_train.py).
    missing = AttributeError(KeyError('\'momentun\'\nDid you mean "momentum" instead of '
                                      '"momentun"?'))
    assert cli._flag_problem(missing, ["p", "--config.momentun=0.5"], "--config.") == (
        "--config.momentun names no config field (did you mean momentum?)")


def test_an_error_is_one_sentence_with_its_exit_code(tmp_path, capsys):
    assert cli.report(OSError(errno.ENOSPC, "No space left on device"),
                      str(tmp_path)) == cli.EXIT_DISK
    assert cli.report(ValueError("learning_rate=-1 is out of range"),
                      str(tmp_path)) == cli.EXIT_BAD_INPUT
    assert cli.report(RuntimeError("a bug"), str(tmp_path)) is None  # its traceback shows
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"error: the disk holding {tmp_path} is full (")
    assert err[1] == "error: learning_rate=-1 is out of range" and len(err) == 2


def test_help_is_printed_with_exit_code_0():
    # absl prints the help and exits 1; a user (or a script) asking for it has made no error.
    for flag in ("--help", "--helpfull"):
        done = subprocess.run([sys.executable, "run_experiment.py", flag], cwd=ROOT,
                              capture_output=True, text=True, env=dict(os.environ,
                              INCEPTION_FLAX_MALLOC="system"))
        assert done.returncode == 0, done.stderr
        assert "--workers" in done.stdout and "--config.sweep.only=" in done.stdout


def test_a_config_file_that_cannot_be_loaded_is_one_sentence(tmp_path):
    """ml_collections defers a missing file's error to the config's first use, and flattens a
    traceback of get_config into the flag's error: each is one sentence naming the file."""
    (tmp_path / "syntax.py").write_text("def get_config(:\n")
    (tmp_path / "empty.py").write_text("X = 1\n")
    for config, said in (
            (str(tmp_path / "nope.py"), f"--config {tmp_path / 'nope.py'}: no such file"),
            (str(tmp_path / "syntax.py"), f"--config {tmp_path / 'syntax.py'}: invalid syntax"),
            (str(tmp_path / "empty.py"), f"--config {tmp_path / 'empty.py'} defines no "
                                         "get_config()"),
            ("experiments/quickstart.py:nope", "--config experiments/quickstart.py:nope: "
                                               "experiment data 'nope' is not valid")):
        done = subprocess.run([sys.executable, "run_experiment.py", "--config", config,
                               "--workdir", str(tmp_path / "run")], cwd=ROOT,
                              capture_output=True, text=True,
                              env=dict(os.environ, INCEPTION_FLAX_MALLOC="system"))
        assert done.returncode == cli.EXIT_BAD_INPUT, done.stderr[-2000:]
        assert done.stderr.startswith(f"error: {said}") and done.stderr.count("\n") == 1
        assert not (tmp_path / "run").exists()
