"""Verdicts: what a sweep's table decides about each variant against its baseline, and what it
would take to decide where it cannot. Every function works on arrays, so the tables and the
Monte-Carlo check of the procedure (`tests/sweeps/test_decide.py`) run the same code.

**The difference.** d = the variant's top-1 error − the baseline's, in points (d > 0: worse).
It is estimated *paired*, from the per-seed differences over the seeds both have done (a
t-interval with n − 1 degrees of freedom), where the two runs of each common seed share their
data order (`same_data_order`: the same data, split, batch and seed), and by *Welch's*
t-interval otherwise. One rule for every table, chosen before any table used it from the
seeds' correlation pooled over the committed pairs (docs: "Tables that decide").

**Levels.** With k variants against one baseline, each comparison is made at α' = α/k
(Bonferroni; a sweep run until decided spends its α/k over its looks, `sequential`): the
difference interval at 1 − α', the equivalence interval at 1 − 2α'. The printed intervals are
these, so a verdict and its intervals agree by construction, and the chance of any false
verdict anywhere in the table is at most α.

**Verdicts**, the first that holds: *worse* (the difference interval lies above 0), *better*
(below 0), *equivalent* (the equivalence interval lies inside ±margin: two one-sided tests),
*non-inferior* (its upper end is below +margin), else *undecided*. Without a margin there is
no equivalence or non-inferiority.

**Populations.** Every seed is evaluated on the same test examples, so the seeds' errors
share the test set's own sampling: a fixed offset that more seeds never shrink. Intervals over
the seeds alone (`interval`; population "eval_set") are about the difference on these test
images; for a claim about the data distribution the test set's sampling belongs in the
interval too (Bouthillier et al. 2021, "Accounting for variance in machine learning
benchmarks"), which `components_interval` adds from each run's per-example results (population
"distribution", the default of new sweeps: `sweep.population`).

**What would decide** an undecided comparison, from the observed spread s (the standard
deviation of the per-seed differences when paired; √(s_v² + s_b²) when not, for equal seeds
of each) with ν = n − 1 degrees of freedom paired, 2n − 2 not:
- `detectable`: the smallest true difference its n seeds show with 80% power,
  (t(1 − α'/2, ν) + t(0.80, ν)) · s / √n;
- `seeds_equivalence`: the seeds (of each) that give 80% power to show equivalence within
  ±margin when the true difference is 0: the least n with (t(1 − α', ν) + t(0.90, ν)) · s / √n
  ≤ margin;
- `seeds_difference`: the seeds that give 80% power to show a true difference of the margin:
  the least n with (t(1 − α'/2, ν) + t(0.80, ν)) · s / √n ≤ margin.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

VERDICTS = ("worse", "better", "equivalent", "non-inferior", "undecided")
POWER = 0.8
# What fixes a seed's data order (input_pipeline: a permutation per (seed, epoch) of the
# split, cut into global batches).
DATA_ORDER_FIELDS = ("dataset", "train_split", "in_memory", "shuffle_buffer",
                     "global_batch_size", "seed")


def _t(quantile, df):
    from scipy import stats  # 2 s to import: only where a table is made
    return stats.t.ppf(quantile, df)


@dataclasses.dataclass
class Interval:
    """A difference and its interval (arrays over the leading axes of the data)."""

    diff: np.ndarray
    low: np.ndarray
    high: np.ndarray
    spread: np.ndarray  # s: the per-seed spread of the difference (module docstring)
    n: np.ndarray  # seeds (paired), or the smaller of the two counts (Welch)
    df: np.ndarray


def interval(variant, baseline, paired: bool, confidence) -> Interval:
    """The difference `variant − baseline` of means over the last axis and its two-sided
    t-interval at `confidence` (a scalar or an array broadcasting over the leading axes):
    paired (the arrays hold the same seeds in the same order) or Welch's. Bounds are nan
    below 2 seeds; a spread of 0 gives the point itself."""
    variant, baseline = np.asarray(variant, float), np.asarray(baseline, float)
    n_v, n_b = variant.shape[-1], baseline.shape[-1]
    if paired:
        differences = variant - baseline
        diff = differences.mean(-1)
        n = np.full(diff.shape, n_v)
        spread = differences.std(-1, ddof=1) if n_v > 1 else np.full(diff.shape, np.nan)
        se, df = spread / math.sqrt(n_v), np.full(diff.shape, n_v - 1.0)
    else:
        diff = variant.mean(-1) - baseline.mean(-1)
        n = np.full(diff.shape, min(n_v, n_b))
        if min(n_v, n_b) > 1:
            var_v, var_b = variant.var(-1, ddof=1), baseline.var(-1, ddof=1)
            a, b = var_v / n_v, var_b / n_b
            se, spread = np.sqrt(a + b), np.sqrt(var_v + var_b)
            with np.errstate(invalid="ignore", divide="ignore"):
                df = (a + b) ** 2 / (a ** 2 / (n_v - 1) + b ** 2 / (n_b - 1))
        else:
            se = spread = df = np.full(diff.shape, np.nan)
    with np.errstate(invalid="ignore"):
        half = np.where(se == 0, 0.0, _t(0.5 + np.asarray(confidence) / 2, df) * se)
    return Interval(diff, diff - half, diff + half, spread, n, df)


def components_interval(variant, baseline, paired: bool, confidence) -> Interval:
    """The difference of mean top-1 error (points) with an interval that covers the test
    set's sampling too: `variant` (n_v, I) and `baseline` (n_b, I) are each seed's per-example
    errors (0 or 100, the same I test examples in the same order), the target the difference
    over new seeds *and new test examples* drawn like these. Its variance is estimated from
    the two-way table of seeds × examples by the method of moments (random seeds, random
    examples: the module docstring's "Populations"), with Satterthwaite's degrees of freedom:
    - paired (each seed of both, in the same order; d = variant − baseline, S seeds × I
      examples): Var = (MS_seeds + MS_examples − MS_residual) / (S·I);
    - Welch (independent seeds): Var = s_v²/n_v + s_b²/n_b + σ̂²_examples/I, where σ̂² is the
      variance over examples of the difference of the two variants' per-example means, less
      what their seeds' residual noise contributes to it (MS_residual,v/n_v + MS_residual,b/n_b).
    An example term estimated below 0 is taken as 0 (the interval is then the seeds-only
    one). `spread` is the seeds-only spread (for `to_decide`)."""
    variant = np.asarray(variant, np.float64)
    baseline = np.asarray(baseline, np.float64)
    if paired:
        d = variant - baseline
        S, I = d.shape[-2:]
        rows, cols, grand = d.mean(-1), d.mean(-2), d.mean((-2, -1))
        ms_seed = I * rows.var(-1, ddof=1)
        ms_example = S * cols.var(-1, ddof=1)
        total = ((d - grand[..., None, None]) ** 2).sum((-2, -1))
        ms_res = (total - (S - 1) * ms_seed - (I - 1) * ms_example) / ((S - 1) * (I - 1))
        example = np.maximum(ms_example - ms_res, 0.0)
        var = (ms_seed + example) / (S * I)
        parts = [(ms_seed / (S * I), S - 1), (ms_example / (S * I), I - 1),
                 (-ms_res / (S * I), (S - 1) * (I - 1))]
        clipped = ms_example <= ms_res
        diff, spread, n = grand, rows.std(-1, ddof=1), S
    else:
        n_v, I = variant.shape[-2:]
        n_b = baseline.shape[-2]
        seed_v, seed_b = variant.mean(-1), baseline.mean(-1)
        a, b = seed_v.var(-1, ddof=1) / n_v, seed_b.var(-1, ddof=1) / n_b
        between = variant.mean(-2) - baseline.mean(-2)

        def residual(x):
            k = x.shape[-2]
            r = x - x.mean(-1, keepdims=True) - x.mean(-2, keepdims=True) \
                + x.mean((-2, -1), keepdims=True)
            return (r ** 2).sum((-2, -1)) / ((k - 1) * (I - 1))
        example = np.maximum(between.var(-1, ddof=1) - residual(variant) / n_v
                             - residual(baseline) / n_b, 0.0) / I
        var = a + b + example
        parts = [(a, n_v - 1), (b, n_b - 1), (example, I - 1)]
        clipped = example <= 0
        diff = seed_v.mean(-1) - seed_b.mean(-1)
        spread, n = np.sqrt(seed_v.var(-1, ddof=1) + seed_b.var(-1, ddof=1)), min(n_v, n_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = var ** 2 / sum(part ** 2 / k for part, k in parts)
        if paired:  # a clipped example term leaves the seeds' own interval and ν
            df = np.where(clipped, S - 1.0, df)
        se = np.sqrt(var)
        half = np.where(se == 0, 0.0, _t(0.5 + np.asarray(confidence) / 2, df) * se)
    diff = np.asarray(diff)
    return Interval(diff, diff - half, diff + half, np.asarray(spread),
                    np.full(diff.shape, n), np.asarray(df))


def verdicts(difference: Interval, equivalence: Interval, margin: float | None) -> np.ndarray:
    """The verdict of each comparison (module docstring), from its difference interval (at
    1 − α') and its equivalence interval (at 1 − 2α')."""
    with np.errstate(invalid="ignore"):
        worse, better = difference.low > 0, difference.high < 0
        if margin:
            equivalent = (equivalence.low > -margin) & (equivalence.high < margin)
            non_inferior = equivalence.high < margin
        else:
            equivalent = non_inferior = np.zeros_like(worse)
    return np.select([worse, better, equivalent, non_inferior], VERDICTS[:4], VERDICTS[4])


def level(alpha: float, comparisons: int) -> float:
    """α' of one of `comparisons` comparisons (Bonferroni)."""
    return alpha / comparisons


def compare(variant, baseline, paired: bool, alpha_each: float, margin: float | None,
            alpha_equivalence: float | None = None, examples=None) -> dict:
    """One comparison (or an array of them) at level `alpha_each` (α'; the equivalence test at
    `alpha_equivalence` a side, default α'): its two intervals and its verdict. `examples`
    ((n_v, I), (n_b, I) per-example errors): the intervals include the test set's sampling
    (`components_interval`); else over the seeds' errors alone (`interval`)."""
    alpha_equivalence = alpha_each if alpha_equivalence is None else alpha_equivalence
    if examples is not None:
        difference = components_interval(*examples, paired, 1 - alpha_each)
        equivalence = components_interval(*examples, paired, 1 - 2 * alpha_equivalence)
    else:
        difference = interval(variant, baseline, paired, 1 - alpha_each)
        equivalence = interval(variant, baseline, paired, 1 - 2 * alpha_equivalence)
    return {"difference": difference, "equivalence": equivalence,
            "verdict": verdicts(difference, equivalence, margin)}


def to_decide(spread: float, n: int, alpha_each: float, margin: float | None, paired: bool,
              most: int = 1000) -> dict:
    """What would decide an undecided comparison (module docstring): `detectable` at its n,
    and, with a margin, `seeds_equivalence` and `seeds_difference` (None beyond `most`)."""
    def df(seeds):
        return seeds - 1 if paired else 2 * seeds - 2

    def power_width(seeds, one_sided_level, power_quantile):
        return (_t(1 - one_sided_level, df(seeds)) + _t(power_quantile, df(seeds))) * spread \
            / math.sqrt(seeds)

    def seeds_for(one_sided_level, power_quantile):
        return next((s for s in range(2, most + 1)
                     if power_width(s, one_sided_level, power_quantile) <= margin), None)
    if not n or n < 2 or not np.isfinite(spread):
        return {"detectable": math.nan, "seeds_equivalence": None, "seeds_difference": None}
    result = {"detectable": float(power_width(n, alpha_each / 2, POWER))}
    result["seeds_equivalence"] = seeds_for(alpha_each, 1 - (1 - POWER) / 2) if margin else None
    result["seeds_difference"] = seeds_for(alpha_each / 2, POWER) if margin else None
    return result


def p_value(variant, baseline, paired: bool) -> float:
    """The two-sided p-value of "no difference" (paired or Welch's t-test)."""
    import warnings

    from scipy import stats
    test = stats.ttest_rel if paired else (lambda a, b: stats.ttest_ind(a, b, equal_var=False))
    with warnings.catch_warnings():  # identical values: scipy warns, and says nan or 1
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(test(variant, baseline).pvalue)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment of p-values (family-wise error): the i-th smallest p times
    (m − i), made monotone and capped at 1, in the input's order."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p)
    stepped = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def errors_compared(variant: dict, baseline: dict, order: list) -> tuple[list, list, bool]:
    """The top-1 errors (%) a comparison uses, from `{seed: done record}` of the variant and of
    the baseline, in the seeds' `order` (seeds not in it are left out): paired over the seeds
    both have done where each pair shares its data order (`same_data_order`), else every done
    seed of each (Welch). Returns (variant's, baseline's, paired)."""
    def error(record):
        return 100 * (1 - record["ema_top1"])
    variant = {seed: variant[seed] for seed in order if seed in variant}
    baseline = {seed: baseline[seed] for seed in order if seed in baseline}
    common = [seed for seed in variant if seed in baseline]
    paired = bool(common) and all(same_data_order(variant[seed], baseline[seed])
                                  for seed in common)
    if paired:
        return [error(variant[s]) for s in common], [error(baseline[s]) for s in common], True
    return [error(r) for r in variant.values()], [error(r) for r in baseline.values()], False


def examples_compared(variant: dict, baseline: dict, order: list, paired: bool):
    """The per-example errors (0 or 100) a comparison over the test set's sampling uses
    (`components_interval`), for the same seeds as `errors_compared`: ((n_v, I), (n_b, I)), or
    None where a record holds no per-example results (`ema_correct`: records written before
    2026-12-03) or they were evaluated on other or partial examples."""
    from inception_flax.run import run_dir
    variant = {seed: variant[seed] for seed in order if seed in variant}
    baseline = {seed: baseline[seed] for seed in order if seed in baseline}
    if paired:
        common = [seed for seed in variant if seed in baseline]
        variant = {seed: variant[seed] for seed in common}
        baseline = {seed: baseline[seed] for seed in common}
    records = list(variant.values()) + list(baseline.values())
    if not records or any("ema_correct" not in r for r in records):
        return None
    decoded = [run_dir.decode_correct(r["ema_correct"]) for r in records]
    if len({len(right) for right, _ in decoded}) > 1 or not all(seen.all() for _, seen in decoded):
        return None
    errors = [100.0 * ~right for right, _ in decoded]
    return np.stack(errors[:len(variant)]), np.stack(errors[len(variant):])


def same_data_order(record_a: dict | None, record_b: dict | None) -> bool:
    """Whether two runs' records (final.json) saw the same data in the same order."""
    configs = [(r or {}).get("config") for r in (record_a, record_b)]
    if not all(isinstance(c, dict) for c in configs):
        return False
    return all(configs[0].get(f) == configs[1].get(f) for f in DATA_ORDER_FIELDS)
