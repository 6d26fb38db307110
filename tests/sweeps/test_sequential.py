"""Seeds until decided: the design's looks, spending and boundaries (against published ones),
and the error of the whole procedure by simulation (N simulated sweeps each, seeded)."""

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


# The committed designs: fig5_vs_fig4's (one comparison, looks at 4, 8, ..., 28 seeds) and the
# one above.
COMMITTED = {"fig5_vs_fig4": sequential.Design(ALPHA, None, 1, sequential.looks(4, 28, 4)),
             "k4_looks_3_to_11": sequential.Design(ALPHA, None, 4, sequential.looks(3, 11, 2))}
STRICT = 3 * math.sqrt(ALPHA * (1 - ALPHA) / N)  # 3 standard errors of a rate near α


@pytest.mark.parametrize("name", list(COMMITTED))
def test_the_exact_boundaries_spend_all_of_alpha_and_no_more(name):
    """The chance of any false worse/better verdict, no difference anywhere, within
    [α − 1%, α + 3 standard errors]: the rule spends its α (the one before spent ~3%), and
    twice the level (α = 0.1) would be caught (~10%)."""
    design = COMMITTED[name]
    verdict = sequential.simulate(design, [0.0] * design.comparisons, N, 0.5, True,
                                  seed=7)["verdict"]
    rate = float(np.mean(np.any((verdict == "better") | (verdict == "worse"), -1)))
    print(f"{name}: any false verdict {rate:.4f} in [{ALPHA - 0.01}, {ALPHA + STRICT:.4f}]")
    assert ALPHA - 0.01 <= rate <= ALPHA + STRICT


def test_the_normal_boundaries_are_the_published_ones():
    """Recursive integration against published values: Pocock's constant 2.413 and O'Brien
    and Fleming's 2.040·√(5/j) spend 0.05 over 5 equal looks (two-sided); Lan-DeMets'
    O'Brien-Fleming-like and Pocock-like boundaries as gsDesign and ldbounds give them."""
    fifths = tuple(j / 5 for j in range(1, 6))
    assert sum(sequential.crossing_probabilities(fifths, [2.413] * 5, 2)) == pytest.approx(
        0.05, abs=3e-4)
    assert sum(sequential.crossing_probabilities(
        fifths, [2.040 * math.sqrt(5 / j) for j in range(1, 6)], 2)) == pytest.approx(
        0.05, abs=3e-4)
    np.testing.assert_allclose(sequential.boundaries(fifths, 0.05, "obrien_fleming", 2),
                               [4.877, 3.357, 2.680, 2.290, 2.031], atol=1.5e-3)
    np.testing.assert_allclose(sequential.boundaries(fifths, 0.05, "pocock", 2),
                               [2.438, 2.427, 2.410, 2.397, 2.386], atol=1.5e-3)


def test_the_t_boundaries_tend_to_the_normal_ones_with_many_seeds():
    """At 60-240 seeds a look, the simulated t-scale boundaries carried back to the normal
    scale by their tail probability are the integrated normal ones."""
    from scipy import stats
    looks = (60, 120, 180, 240)
    t = sequential.t_boundaries(looks, ALPHA, "power", 2)
    z = sequential.boundaries(tuple(n / 240 for n in looks), ALPHA, "power", 2)
    carried = [stats.norm.isf(stats.t.sf(c, n - 1)) for c, n in zip(t, looks)]
    np.testing.assert_allclose(carried, z, atol=0.03)


def test_a_fixed_design_is_the_one_look_case():
    fixed = sequential.Design(ALPHA, 1.0, 4, (7,))
    assert fixed.alpha_at(0) == ALPHA / 4
    assert fixed.levels(0) == pytest.approx((ALPHA / 4, ALPHA / 4))
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
