"""Tables that decide: what a seed shares between variants, the verdicts of small cases by hand
(paired, Welch, equivalence, the multiplicity rule) through the table, and Holm against
statsmodels."""

import json
import math

import jax
import numpy as np
import pytest
from scipy import stats

from experiments import quickstart
from inception_flax.model import network
from inception_flax.run import input_pipeline
from inception_flax.sweeps import decide, plan, tables
from tests.helpers import needs_fashion_mnist

ALPHA = 0.05


# ---------------------------------------------------------------------------------------------
# What a seed fixes in two variants.

def test_a_seed_gives_two_variants_the_same_initial_layers():
    """flax draws a parameter's initial value from the root key folded with its path: a layer
    of the same path and shape starts equal in two variants of one seed."""
    runs = {r.variant: r for r in plan.expand(quickstart.get_config()) if r.seed == 0}
    images = jax.numpy.zeros((1, 75, 75, 3))
    params = {name: jax.tree_util.tree_flatten_with_path(network.Inception(
        run.model).init(jax.random.PRNGKey(0), images)["params"])[0]
        for name, run in runs.items()}
    fig4, fig5 = ({jax.tree_util.keystr(p): x for p, x in params[v]} for v in ("fig4", "fig5"))
    shared = [p for p in fig4 if p in fig5 and fig4[p].shape == fig5[p].shape]
    assert len(shared) > 0.9 * len(fig4)
    for path in shared:
        np.testing.assert_array_equal(fig4[path], fig5[path], err_msg=path)
    # The layers figure 5 adds (its 5×5 as two 3×3) are new, not copies.
    assert [p for p in fig5 if p not in fig4]
    # Another seed draws them anew.
    other = network.Inception(runs["fig4"].model).init(jax.random.PRNGKey(1), images)
    kernel = "['Mixed_5b']['Branch_0']['Conv2d_0a_1x1']['Conv']['kernel']"
    assert not np.array_equal(fig4[kernel],
                              other["params"]["Mixed_5b"]["Branch_0"]["Conv2d_0a_1x1"]["Conv"]
                              ["kernel"])


@needs_fashion_mnist
def test_a_seed_gives_two_variants_the_same_data_order():
    configs = {r.variant: r.config for r in plan.expand(quickstart.get_config()) if r.seed == 1}
    batches = {}
    for name, config in configs.items():
        data = input_pipeline.create(config, config.global_batch_size, config.eval_batch_size)
        iterator = data.train_batches(900)  # across the end of the first epoch
        batches[name] = [next(iterator) for _ in range(40)]
    for a, b in zip(batches["fig4"], batches["fig5"]):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    records = {name: {"config": c.to_dict()} for name, c in configs.items()}
    assert decide.same_data_order(records["fig4"], records["fig5"])
    records["fig5"]["config"]["global_batch_size"] = 32
    assert not decide.same_data_order(records["fig4"], records["fig5"])
    assert not decide.same_data_order(records["fig4"], {"status": "done"})  # no config


# ---------------------------------------------------------------------------------------------
# Small cases by hand, through the table.

def table(tmp_path, errors: dict, margin=None, shared_order=True):
    """The rows of a made-up sweep: per variant its seeds' top-1 errors (%), the first
    variant the baseline."""
    runs = []
    for variant, values in errors.items():
        for seed, error in enumerate(values):
            run_dir = tmp_path / variant / f"seed{seed}"
            run_dir.mkdir(parents=True)
            config = {"dataset": "d", "train_split": "train", "in_memory": True,
                      "shuffle_buffer": 1, "global_batch_size": 64, "seed": seed}
            record = {"status": "done", "ema_top1": 1 - error / 100, "ema_top5": 0.99,
                      "params": 1, "macs": 1, "images_per_s": 1.0}
            if shared_order:
                record["config"] = config
            (run_dir / "final.json").write_text(json.dumps(record))
            runs.append({"variant": variant, "seed": seed, "dir": f"{variant}/seed{seed}",
                         "params": 1, "macs": 1})
    (tmp_path / "sweep.json").write_text(json.dumps({"sweep": {
        "baseline": next(iter(errors)), "alpha": ALPHA, "margin": margin,
        "seeds": [0, 1, 2]}, "runs": runs}))
    return {r["variant"]: r for r in tables.write(str(tmp_path))}


def test_a_paired_difference_by_hand(tmp_path):
    # Differences 1, 2, 2: mean 5/3, sd 1/√3, se 1/3; t(0.975, 2) = 4.302653 (tables).
    rows = table(tmp_path, {"base": [10, 12, 14], "new": [11, 14, 16]})
    c = rows["new"]["comparison"]
    half = 4.302653 / 3
    assert c["test"] == "paired" and c["n"] == (3,)
    assert (c["diff"], c["low"], c["high"]) == pytest.approx((5 / 3, 5 / 3 - half,
                                                              5 / 3 + half), abs=1e-5)
    assert c["verdict"] == "worse" and c["to_decide"] is None
    assert c["p"] == pytest.approx(stats.ttest_rel([11, 14, 16], [10, 12, 14]).pvalue)
    markdown = (tmp_path / "results.md").read_text()
    assert "| +1.67 [+0.23, +3.10] (paired, 3 pairs) | worse |" in markdown


def test_welch_where_the_data_order_is_not_shared_by_hand(tmp_path):
    rows = table(tmp_path, {"base": [10, 12, 14], "new": [11, 14, 16]}, shared_order=False)
    c = rows["new"]["comparison"]
    # Welch: se² = 19/9 + 4/3, ν = se⁴ / ((19/9)²/2 + (4/3)²/2).
    se2 = 19 / 9 + 4 / 3
    nu = se2 ** 2 / ((19 / 9) ** 2 / 2 + (4 / 3) ** 2 / 2)
    half = stats.t.ppf(0.975, nu) * math.sqrt(se2)
    assert c["test"] == "Welch" and c["n"] == (3, 3)
    assert (c["low"], c["high"]) == pytest.approx((5 / 3 - half, 5 / 3 + half), abs=1e-9)
    assert c["verdict"] == "undecided"
    # What would decide: detectable at n = 3 with ν = 4, s² = 19/3 + 4.
    s = math.sqrt(19 / 3 + 4)
    assert c["to_decide"]["detectable"] == pytest.approx(
        (stats.t.ppf(0.975, 4) + stats.t.ppf(0.8, 4)) * s / math.sqrt(3))


def test_equivalence_and_non_inferiority_by_hand(tmp_path):
    # Differences 0.5, 0.4, 0.2: mean 0.3667, se 0.0882. 95%: t = 4.302653, [-0.013, +0.746]
    # (no difference shown); 90%: t = 2.919986, [+0.109, +0.624] inside ±1: equivalent.
    rows = table(tmp_path / "eq", {"base": [10, 12, 14], "new": [10.5, 12.4, 14.2]}, margin=1.0)
    c = rows["new"]["comparison"]
    se = np.std([0.5, 0.4, 0.2], ddof=1) / math.sqrt(3)
    assert c["equivalence"] == pytest.approx((0.36667 - 2.919986 * se,
                                              0.36667 + 2.919986 * se), abs=1e-4)
    assert c["low"] < 0 < c["high"] and c["verdict"] == "equivalent"
    # Differences -1.0, 0.1, 0.3: the 90% interval [-1.38, +0.98] reaches below -1 but stays
    # below +1: non-inferior, not equivalent.
    rows = table(tmp_path / "ni", {"base": [10, 12, 14], "new": [9, 12.1, 14.3]}, margin=1.0)
    c = rows["new"]["comparison"]
    se = np.std([-1.0, 0.1, 0.3], ddof=1) / math.sqrt(3)
    assert c["equivalence"] == pytest.approx((-0.2 - 2.919986 * se, -0.2 + 2.919986 * se),
                                             abs=1e-6)
    assert c["verdict"] == "non-inferior"
    # Undecided: what would decide, by the formulas of decide.py (t quantiles from scipy).
    rows = table(tmp_path / "un", {"base": [10, 12, 14], "new": [11, 12, 16]}, margin=1.0)
    c = rows["new"]["comparison"]
    s = np.std([1, 0, 2], ddof=1)
    assert c["verdict"] == "undecided"
    width = lambda n, a, q: (stats.t.ppf(1 - a, n - 1) + stats.t.ppf(q, n - 1)) * s / math.sqrt(n)  # noqa: E731,E501
    expected = next(n for n in range(2, 100) if width(n, 0.05, 0.9) <= 1.0)
    assert c["to_decide"]["seeds_equivalence"] == expected
    assert width(expected - 1, 0.05, 0.9) > 1.0
    assert c["to_decide"]["seeds_difference"] == next(
        n for n in range(2, 100) if width(n, 0.025, 0.8) <= 1.0)
    assert f"±1: {expected} seeds" in (tmp_path / "un" / "results.md").read_text()


def test_more_variants_widen_every_interval_bonferroni(tmp_path):
    """With k = 2 each difference is at 1 − 0.05/2: the paired case that was worse at k = 1
    (its 95% interval [+0.23, +3.10]) is undecided at 97.5%: t(0.9875, 2) = 6.205347."""
    rows = table(tmp_path, {"base": [10, 12, 14], "new": [11, 14, 16], "other": [10, 12, 14]})
    c = rows["new"]["comparison"]
    assert c["alpha"] == 0.025
    assert (c["low"], c["high"]) == pytest.approx((5 / 3 - 6.205347 / 3, 5 / 3 + 6.205347 / 3),
                                                  abs=1e-5)
    assert c["verdict"] == "undecided"
    assert "Δ top-1 [97.5% CI]" in (tmp_path / "results.md").read_text()
    assert "1 − α/k = 97.5% (α = 0.05, k = 2" in (tmp_path / "results.md").read_text()


# p-values and statsmodels 0.15.0's `multipletests(p, method="holm")[1]` for them (computed once
# and written here: importing statsmodels took 16-56 s of the suite, pandas with it).
HOLM_BY_STATSMODELS = [
    ([0.258428], [0.258428]),
    ([0.019636, 6.9e-05], [0.019636, 0.000138]),
    ([5e-06, 0.537904, 0.760437, 0.223246], [2e-05, 1.0, 1.0, 0.669738]),
    ([0.388213, 0.160656, 0.81759, 0.543046, 1e-07, 0.630314, 3.8e-05, 0.388466, 0.00542],
     [1.0, 0.963936, 1.0, 1.0, 9e-07, 1.0, 0.000304, 1.0, 0.03794]),
    ([0.01, 0.01, 0.02, 0.02, 0.5, 0.04], [0.06, 0.06, 0.08, 0.08, 0.5, 0.08]),
    ([0.001, 0.2, 0.3, 0.9, 0.95], [0.005, 0.8, 0.9, 1.0, 1.0]),
]


@pytest.mark.parametrize("p, adjusted", HOLM_BY_STATSMODELS)
def test_holm_matches_statsmodels(p, adjusted):
    np.testing.assert_allclose(decide.holm(p), adjusted, rtol=1e-12)


def test_holm_by_hand():
    assert list(decide.holm([0.01, 0.04, 0.03, 0.5])) == pytest.approx([0.04, 0.09, 0.09, 0.5])


def test_the_interval_over_seeds_and_examples_by_hand():
    """Paired: the two-way table of per-example differences, seeds × examples, by the method
    of moments with loops; Welch: its three variance parts; both with Satterthwaite's ν."""
    from scipy import stats
    rng = np.random.default_rng(5)
    v = 100.0 * (rng.random((4, 7)) < 0.3)
    b = 100.0 * (rng.random((4, 7)) < 0.2)
    d = v - b
    S, I = d.shape
    grand = sum(d[s, i] for s in range(S) for i in range(I)) / (S * I)
    rows = [sum(d[s]) / I for s in range(S)]
    cols = [sum(d[:, i]) / S for i in range(I)]
    ms_seed = I * sum((r - grand) ** 2 for r in rows) / (S - 1)
    ms_ex = S * sum((c - grand) ** 2 for c in cols) / (I - 1)
    ms_res = sum((d[s, i] - rows[s] - cols[i] + grand) ** 2
                 for s in range(S) for i in range(I)) / ((S - 1) * (I - 1))
    assert ms_ex > ms_res  # the example term is kept
    var = (ms_seed + ms_ex - ms_res) / (S * I)
    df = var ** 2 / ((ms_seed / (S * I)) ** 2 / (S - 1) + (ms_ex / (S * I)) ** 2 / (I - 1)
                     + (ms_res / (S * I)) ** 2 / ((S - 1) * (I - 1)))
    got = decide.components_interval(v, b, True, 0.9)
    assert float(got.diff) == pytest.approx(grand)
    assert float(got.df) == pytest.approx(df)
    assert float(got.high - got.diff) == pytest.approx(stats.t.ppf(0.95, df) * math.sqrt(var))

    w = 100.0 * (rng.random((3, 7)) < 0.25)  # Welch: 4 seeds against 3
    seeds_v, seeds_w = v.mean(1), w.mean(1)
    a, c = seeds_v.var(ddof=1) / 4, seeds_w.var(ddof=1) / 3

    def residual(x):
        k = x.shape[0]
        r = x - x.mean(1, keepdims=True) - x.mean(0, keepdims=True) + x.mean()
        return (r ** 2).sum() / ((k - 1) * (I - 1))
    example = max((v.mean(0) - w.mean(0)).var(ddof=1) - residual(v) / 4 - residual(w) / 3,
                  0) / I
    got = decide.components_interval(v, w, False, 0.9)
    var = a + c + example
    assert float(got.high - got.diff) == pytest.approx(
        stats.t.ppf(0.95, float(got.df)) * math.sqrt(var))
    assert float(got.df) == pytest.approx(var ** 2 / (a ** 2 / 3 + c ** 2 / 2
                                                      + example ** 2 / (I - 1)))


def test_the_interval_over_seeds_and_examples_covers_the_population():
    """Simulated: each example's easiness and the variant's effect on it drawn from a
    population, seeds as shifts of every probit, the seeds of both sharing their noise. The
    interval over seeds and examples covers the population's difference at its level; the
    one over seeds alone does not (the test set's own sampling is missing from it)."""
    from scipy import stats
    rng = np.random.default_rng(11)
    sims, examples, seeds, hits, hits_seeds = 300, 1500, 6, 0, 0
    easiness, effect, shared = (1.2, 1.2), (0.05, 0.6), 0.8
    truth = 100 * (stats.norm.cdf(easiness[0] / math.sqrt(1 + easiness[1] ** 2))
                   - stats.norm.cdf((easiness[0] - effect[0])
                                    / math.sqrt(1 + easiness[1] ** 2 + effect[1] ** 2)))
    for _ in range(sims):
        u, e = rng.normal(*easiness, examples), rng.normal(*effect, examples)
        common = rng.standard_normal((seeds, examples))
        noise = [shared * common + math.sqrt(1 - shared ** 2)
                 * rng.standard_normal((seeds, examples)) for _ in range(2)]
        b = 100.0 * ~(u + noise[0] > 0)
        v = 100.0 * ~(u - e + noise[1] > 0)
        ci = decide.components_interval(v, b, True, 0.95)
        alone = decide.interval(v.mean(1), b.mean(1), True, 0.95)
        hits += bool(ci.low <= truth <= ci.high)
        hits_seeds += bool(alone.low <= truth <= alone.high)
    print(f"coverage over seeds and examples {hits / sims:.3f}, over seeds {hits_seeds / sims:.3f}")
    assert 0.92 <= hits / sims <= 0.98 and hits_seeds / sims <= 0.9
