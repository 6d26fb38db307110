"""`python -m inception_flax.results` (and its older name `inception_flax.report`): a sweep's
tables from what is done."""

import subprocess
import sys

import pytest

from inception_flax import results
from tests.helpers import write_made_up


@pytest.mark.slow
def test_command_line_new_and_old_spellings(tmp_path, capsys):
    write_made_up(str(tmp_path), {"base": [0.90, 0.88], "new": [0.93, 0.91]})
    # The new spelling, and the old one (`report.py`, a positional directory) as before.
    for module, args in (("inception_flax.results", ["--workdir", str(tmp_path)]),
                         ("inception_flax.report", [str(tmp_path)])):
        (tmp_path / "results.md").unlink(missing_ok=True)
        done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "| new (a) | 0.00 M" in done.stdout and (tmp_path / "results.md").exists()
    # The rest in this process (`results.main`, what both commands run).
    assert results.main(["--workdir", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no sweep.json" in err
    assert results.main([]) == 2
    assert capsys.readouterr().err.startswith("error: no --workdir given; give the --workdir")
    assert results.main(["--help"]) == 0 and "--workdir" in capsys.readouterr().out
