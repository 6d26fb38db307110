"""Seeds until decided: the design's looks and spending, and the error of the whole procedure
by simulation (N simulated sweeps each, seeded)."""

import math

import numpy as np
import pytest

from inception_flax.sweeps import sequential

N = 10_000  # simulated sweeps
ALPHA = 0.05
BOUND = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / N)
# k = 4 variants, looks at 3, 5, 7, 9 and 11 seeds.
DESIGN = sequential.Design(ALPHA, 1.0, 4, sequential.looks(3, 11, 2))


@pytest.mark.parametrize("correlation,paired", [(0.0, True), (0.5, True), (0.5, False)])
def test_any_false_verdict_is_at_most_alpha(correlation, paired):
    """No true difference; two of four variants truly different; every variant at ±margin."""
    def chance(means, false):
        verdict = sequential.simulate(DESIGN, means, N, correlation, paired)["verdict"]
        return float(np.mean(np.any(false(verdict), -1)))
    none = chance([0, 0, 0, 0], lambda v: (v == "better") | (v == "worse"))
    partial = chance([0, 0, 3, -3], lambda v: np.stack([
        (v[:, 0] == "better") | (v[:, 0] == "worse"), (v[:, 1] == "better") | (v[:, 1] == "worse"),
        v[:, 2] == "better", v[:, 3] == "worse"], -1))
    above = chance([1, 1, 1, 1], lambda v: np.isin(v, ("equivalent", "non-inferior", "better")))
    below = chance([-1, -1, -1, -1], lambda v: np.isin(v, ("equivalent", "worse")))
    print(f"correlation {correlation}, {'paired' if paired else 'Welch'}: any false verdict "
          f"{none:.4f} (none differ), {partial:.4f} (two differ), {above:.4f} (+margin), "
          f"{below:.4f} (-margin); bound {BOUND:.4f}")
    for rate in (none, partial, above, below):
        assert rate <= BOUND


def test_a_fixed_design_is_the_one_look_case():
    fixed = sequential.Design(ALPHA, 1.0, 4, (7,))
    assert fixed.alpha_at(0) == ALPHA / 4
    assert sum(DESIGN.alpha_at(j) for j in range(5)) == pytest.approx(ALPHA / 4)
    assert DESIGN.alpha_at(0) < DESIGN.alpha_at(4)  # little at the first looks
    result = sequential.characteristics(DESIGN, correlation=0.5, effect=1.0, sims=2000)
    print("power at one seed-sd, mean seeds, fixed design of equal power:", result)
    assert 0 < result["power"] < 1 and result["fixed_seeds"] is not None
    assert 3 <= result["mean_seeds"] <= 11


def test_the_command_line_refuses_numbers_out_of_range(capsys):
    for flag, message in (("--alpha=2", "--alpha=2.0 is out of range; give a number in (0, 1)"),
                          ("--correlation=1", "--correlation=1.0 is out of range"),
                          ("--variants=0", "--variants=0 is out of range"),
                          ("--min_seeds=1", "sweep.min_seeds=1, max_seeds=11")):
        assert sequential.main([flag, "--sims=10"]) == 2
        said = capsys.readouterr()
        assert said.out == "" and said.err.startswith(f"error: {message}")
        assert said.err.count("\n") == 1
