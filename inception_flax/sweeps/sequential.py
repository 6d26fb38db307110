"""Seeds added until each comparison is decided (`sweep.until_decided`): the design, its looks,
its boundaries, and a simulation of what it decides (its error rates, power and seeds used).

**The design.** Every variant starts with `min_seeds` seeds (the first of `sweep.seeds`); after
each stage the table is read (a *look*), and only the variants still undecided, with the
baseline they are compared against, get `seeds_per_stage` more, up to `max_seeds`: looks at
n = min_seeds, min_seeds + seeds_per_stage, ..., max_seeds (the last look at max_seeds even
where the stages do not divide). A verdict, once reached, is frozen.

**The error.** Each of the k comparisons gets α/k (Bonferroni over the comparisons) and spends
it over its L planned looks by a spending function of the information fraction t_j = n_j /
max_seeds (Lan & DeMets 1983): the power family α·t^ρ (Kim & DeMets 1987; ρ = 3, O'Brien and
Fleming's shape: little at the first looks, most at the last; the default), Lan and DeMets'
O'Brien-Fleming-like 2 − 2Φ(z_{1−α/2}/√t), or their Pocock-like α·ln(1 + (e − 1)t).
`sweep.boundaries` says how a look's share becomes its critical value:
- "exact" (the default): group-sequential boundaries c_1..c_L on the normal scale such that
  the chance of crossing at look j and not before is exactly the share spent there, under
  the canonical joint distribution of the looks' statistics (Corr(Z_i, Z_j) = √(t_i/t_j)),
  computed by recursive numerical integration (Armitage, McPherson & Rowe 1969; Jennison &
  Turnbull, "Group Sequential Methods", 2000, ch. 19: Simpson's rule on a grid, each c_j found
  by root finding): two-sided for the difference (worse/better), one-sided for each side of
  the equivalence and non-inferiority tests. The seeds' spread is estimated, so each look's
  statistic is a t, not a z: c_j is carried to the t scale by its tail probability,
  t_{ν}^{-1}(Φ(c_j)) at the look's degrees of freedom ν (quantile substitution; its error at
  3-28 seeds is measured by simulation, `benchmarks/sequential_error.py`).
- "bonferroni" (the rule before 2026-12-03, kept for the designs recorded with it): look j
  spends its share α_j as if alone, the marginal t quantile at α_j; valid by the union bound,
  conservative by the looks' correlation (realised error ~3% for a nominal 5%).
Either way the intervals a look prints are at its critical values: repeated confidence
intervals (Jennison & Turnbull ch. 9) that cover every comparison's true difference at every
look with probability ≥ 1 − α, so a verdict is false with probability ≤ α, family-wise.

**The population** (`sweep.population`, recorded in the design): "eval_set", intervals over the
seeds alone (the difference on these test images), or "distribution", intervals that add the
test set's own sampling (`decide.components_interval`: the difference on new test data drawn
like it). With "distribution" the looks' statistics share the test set's term, which makes
them more correlated than √(t_i/t_j); the boundaries computed for √(t_i/t_j) are then
conservative (measured, `benchmarks/sequential_error.py`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import sys

import numpy as np

from inception_flax.sweeps import decide

SPENDINGS = ("power", "obrien_fleming", "pocock")
BOUNDARIES = ("exact", "bonferroni")
POPULATIONS = ("distribution", "eval_set")
SPENDING = 3  # ρ of the power-family spending function (module docstring)
LEGACY_SPENDING = f"power family, rho {SPENDING}"  # how designs before 2026-12-03 said it


def spent(spending: str, alpha: float, t: float) -> float:
    """The α spent by information fraction t (cumulative; α at t = 1)."""
    from scipy import stats
    if t <= 0:
        return 0.0
    t = min(t, 1.0)
    if spending == "power":
        return alpha * t ** SPENDING
    if spending == "obrien_fleming":
        return float(2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / math.sqrt(t)))
    if spending == "pocock":
        return alpha * math.log(1 + (math.e - 1) * t)
    raise ValueError(f"sweep.spending={spending!r} is not valid; choose "
                     f"{' or '.join(map(repr, SPENDINGS))}.")


GRID = 1201  # points of the grid each look's density is carried on (Simpson's rule)


class _Looks:
    """The sub-density of the look statistic Z_j on its continuation region, carried from look
    to look by numerical integration (Jennison & Turnbull 2000, ch. 19)."""

    def __init__(self, sides: int):
        self.sides, self.density, self.points, self.t = sides, None, None, 0.0

    def crossing(self, t: float, c: float) -> float:
        """P(Z_j crosses c at information t, not having crossed before)."""
        from scipy import integrate, stats
        if self.density is None:
            return float(self.sides * stats.norm.sf(c))
        scale, root = math.sqrt(t - self.t), math.sqrt(self.t)
        up = stats.norm.sf((c * math.sqrt(t) - self.points * root) / scale)
        if self.sides == 2:
            up = up + stats.norm.cdf((-c * math.sqrt(t) - self.points * root) / scale)
        return float(integrate.simpson(self.density * up, x=self.points))

    def carry(self, t: float, c: float) -> None:
        """Moves to the look at information t with boundary c."""
        from scipy import integrate, stats
        high = min(c, 12.0)
        points = np.linspace(-high if self.sides == 2 else -12.0, high, GRID)
        if self.density is None:
            density = stats.norm.pdf(points)
        else:
            scale, root = math.sqrt(t - self.t), math.sqrt(self.t)
            kernel = stats.norm.pdf((points[:, None] * math.sqrt(t)
                                     - self.points[None, :] * root) / scale)
            density = integrate.simpson(kernel * self.density[None, :], x=self.points,
                                        axis=1) * math.sqrt(t) / scale
        self.density, self.points, self.t = density, points, t


def crossing_probabilities(fractions, bounds, sides: int) -> list[float]:
    """Each look's chance of crossing its boundary (`bounds`, normal scale) and not before,
    under no difference: two-sided (`sides` 2) or one-sided (1)."""
    looks, result = _Looks(sides), []
    for t, c in zip(fractions, bounds):
        result.append(looks.crossing(t, c))
        looks.carry(t, c)
    return result


@functools.lru_cache(maxsize=256)
def boundaries(fractions: tuple[float, ...], alpha: float, spending: str,
               sides: int) -> tuple[float, ...]:
    """The exact group-sequential boundaries c_1..c_L (normal scale) that spend `alpha` at
    the information `fractions` by `spending`: two-sided (`sides` 2: crossing |Z_j| ≥ c_j) or
    one-sided (1: Z_j ≥ c_j), each look's crossing probability, not having crossed before,
    equal to its share (module docstring). A look that spends nothing gets +inf."""
    from scipy import optimize
    # Two-sided: each side spends alpha/2 by the one-sided function (as Lan & DeMets and
    # gsDesign's symmetric designs do; the same for the power and Pocock-like functions,
    # which are linear in alpha).
    shares = np.diff([0.0] + [sides * spent(spending, alpha / sides, t) for t in fractions])
    looks, result = _Looks(sides), []
    for t, share in zip(fractions, shares):
        c = (optimize.brentq(lambda c: looks.crossing(t, c) - share, 0.0, 40.0, xtol=1e-10)
             if share > 0 else math.inf)
        result.append(float(c))
        looks.carry(t, c)
    return tuple(result)


CALIBRATION_PATHS = 400_000  # simulated sweeps the t-scale boundaries are found on
CALIBRATION_SEED = 20261203


@functools.lru_cache(maxsize=256)
def t_boundaries(looks: tuple[int, ...], alpha: float, spending: str,
                 sides: int) -> tuple[float, ...]:
    """The group-sequential boundaries on the t scale for the paired t statistics of a design
    with `looks` (seeds at each look; ν_j = n_j − 1): each look's chance of crossing, not
    having crossed before, equal to its share of `alpha` (`boundaries`' shares). The t
    statistics of one sweep share their seeds, so their joint law is not the normal one
    `boundaries` integrates; with 3-28 seeds, carrying the normal boundaries over by their
    tail probabilities spends 5.26% for a nominal 5% (`benchmarks/sequential_error.py`). So
    the first look's is the t quantile of its share, and each later one is found on
    `CALIBRATION_PATHS` simulated sweeps of normal per-seed differences (a fixed seed: the
    same boundaries everywhere): the largest c that crosses no more than the look's share of
    the sweeps not stopped before. The t statistic is pivotal (its law does not depend on
    the seeds' spread), so this is exact for paired comparisons up to the simulation's error,
    which the shares are made smaller by twice (so that it spends no more than `alpha`); the
    normal boundaries are its limit at many seeds (tested)."""
    from scipy import stats
    shares = np.diff([0.0] + [sides * spent(spending, alpha / sides, n / looks[-1])
                              for n in looks])
    # The looks found by simulation spend less by twice the calibration's standard error, so
    # that its own error spends no more than alpha (1.4% less at alpha = 0.05); the first
    # look's is exact.
    shares[1:] *= 1 - 2 * math.sqrt(alpha * (1 - alpha) / CALIBRATION_PATHS) / alpha
    rng = np.random.default_rng(CALIBRATION_SEED)
    statistics = np.empty((CALIBRATION_PATHS, len(looks)))
    for start in range(0, CALIBRATION_PATHS, 50_000):  # in chunks: 50,000 × max_seeds at most
        x = rng.standard_normal((min(50_000, CALIBRATION_PATHS - start), looks[-1]))
        total, squares = np.cumsum(x, 1), np.cumsum(x * x, 1)
        for j, n in enumerate(looks):
            mean = total[:, n - 1] / n
            var = (squares[:, n - 1] - n * mean * mean) / (n - 1)
            t = mean / np.sqrt(var / n)
            statistics[start:start + len(x), j] = np.abs(t) if sides == 2 else t
    stopped, result = np.zeros(CALIBRATION_PATHS, bool), []
    for j, (n, share) in enumerate(zip(looks, shares)):
        if share <= 0:
            result.append(math.inf)
            continue
        if j == 0:
            c = float(stats.t.isf(share / sides, n - 1))
        else:
            k = int(round(share * CALIBRATION_PATHS))  # sweeps to stop here
            candidates = np.sort(statistics[~stopped, j])[::-1]
            c = float(candidates[k]) if 0 < k < len(candidates) else math.inf
        stopped |= statistics[:, j] > c
        result.append(c)
    return tuple(result)


@dataclasses.dataclass(frozen=True)
class Design:
    alpha: float
    margin: float | None
    comparisons: int  # k: the variants compared with the baseline
    looks: tuple[int, ...]  # the seeds of each comparison at each look
    spending: str = "power"
    boundaries: str = "exact"
    population: str = "eval_set"

    def fractions(self) -> tuple[float, ...]:
        return tuple(n / self.looks[-1] for n in self.looks)

    def alpha_at(self, look: int) -> float:
        """α_j of one comparison at look `look` (0-based): its share of α/k."""
        each = decide.level(self.alpha, self.comparisons)
        fractions = (0.0,) + self.fractions()
        return spent(self.spending, each, fractions[look + 1]) \
            - spent(self.spending, each, fractions[look])

    def levels(self, look: int) -> tuple[float, float]:
        """(α of the difference interval, α of each side of the equivalence test) at look
        `look` of one comparison: its two-sided difference interval is at 1 − the first, its
        equivalence interval at 1 − 2 × the second (module docstring)."""
        if self.boundaries == "bonferroni":
            return self.alpha_at(look), self.alpha_at(look)
        from scipy import stats
        each, df = decide.level(self.alpha, self.comparisons), self.looks[look] - 1
        two = t_boundaries(self.looks, each, self.spending, 2)[look]
        one = t_boundaries(self.looks, each, self.spending, 1)[look]
        # As tail probabilities at the paired statistic's ν = n − 1; an interval of other
        # degrees of freedom (Welch's, Satterthwaite's) takes the same tail probability.
        return float(2 * stats.t.sf(two, df)), float(stats.t.sf(one, df))

    def to_json(self) -> dict:
        """As the log and the tables record it (a design of the rule before 2026-12-03 as it
        recorded itself then, so its logs still agree)."""
        base = {"alpha": self.alpha, "margin": self.margin, "comparisons": self.comparisons,
                "looks": list(self.looks)}
        if self.boundaries == "bonferroni" and self.spending == "power" \
                and self.population == "eval_set":
            return base | {"spending": LEGACY_SPENDING}
        return base | {"spending": self.spending, "boundaries": self.boundaries,
                       "population": self.population}

    @classmethod
    def from_json(cls, d: dict) -> "Design":
        spending = d.get("spending", "power")
        if spending == LEGACY_SPENDING:
            spending = "power"
        return cls(d["alpha"], d["margin"], d["comparisons"], tuple(d["looks"]), spending,
                   d.get("boundaries", "bonferroni"), d.get("population", "eval_set"))


def looks(min_seeds: int, max_seeds: int, seeds_per_stage: int) -> tuple[int, ...]:
    """The seeds at each look: min_seeds, then seeds_per_stage more each, up to max_seeds."""
    if not 2 <= min_seeds <= max_seeds or seeds_per_stage < 1:
        raise ValueError(f"sweep.min_seeds={min_seeds}, max_seeds={max_seeds} and "
                         f"seeds_per_stage={seeds_per_stage} are not valid; use 2 <= min_seeds "
                         "<= max_seeds and seeds_per_stage >= 1.")
    return tuple(range(min_seeds, max_seeds, seeds_per_stage)) + (max_seeds,)


def run(design: Design, variants: np.ndarray, baseline: np.ndarray, paired: bool) -> dict:
    """The design applied to complete data: `variants` (..., k, max_seeds) and `baseline`
    (..., max_seeds) top-1 errors. Returns each comparison's `verdict` (..., k), the look it
    was reached at (`look`, -1: undecided at the last) and the seeds it used (`seeds`), and
    the seeds the baseline used (..., ). Vectorized over the leading axes (simulations)."""
    shape = variants.shape[:-1]
    verdict = np.full(shape, decide.VERDICTS[-1], dtype=object)
    look = np.full(shape, -1)
    seeds = np.full(shape, design.looks[-1])
    for j, n in enumerate(design.looks):
        open_ = look < 0
        if not open_.any():
            break
        difference, equivalence = design.levels(j)
        now = decide.compare(variants[..., :n], baseline[..., None, :n], paired,
                             difference, design.margin, equivalence)["verdict"]
        decided = open_ & (now != decide.VERDICTS[-1])
        verdict[decided], look[decided], seeds[decided] = now[decided], j, n
    baseline_seeds = seeds.max(-1)
    return {"verdict": verdict, "look": look, "seeds": seeds, "baseline_seeds": baseline_seeds}


def simulate(design: Design, means, sims: int, correlation: float, paired: bool = True,
             seed: int = 0) -> dict:
    """`run` on `sims` sweeps of synthetic per-seed errors (standard deviation 1): the baseline
    b ~ N(0, 1) per seed, variant j = means[j] + correlation·b + √(1 − correlation²)·e."""
    rng = np.random.default_rng(seed)
    k, n = len(means), design.looks[-1]
    baseline = rng.standard_normal((sims, n))
    noise = rng.standard_normal((sims, k, n))
    variants = (np.asarray(means, float)[None, :, None] + correlation * baseline[:, None, :]
                + np.sqrt(1 - correlation ** 2) * noise)
    return run(design, variants, baseline, paired)


def characteristics(design: Design, correlation: float = 0.5, effect: float = 1.0,
                    sims: int = 10_000, paired: bool = True, seed: int = 0) -> dict:
    """What `design` does, by simulation (per-seed errors of standard deviation 1, seeds
    correlated by `correlation` between a variant and the baseline):
    - `false_verdicts`: the chance of any false verdict over the k variants and all looks,
      with no true difference (any better or worse), and at a true difference of +margin and
      −margin (any equivalent, at +margin any non-inferior, any verdict of the wrong sign);
    - at a true difference of `effect` for every variant: how often each verdict is reached
      (`verdicts`), the `power` (the right one: worse above 0, better below, equivalent at 0),
      the mean seeds a variant and the baseline used, and `fixed_seeds`, the seeds of a fixed
      design (one look at α/k) with at least that power."""
    k = design.comparisons

    def draw(means, one_design=design):
        return simulate(one_design, means, sims, correlation, paired, seed)
    null = draw([0.0] * k)["verdict"]
    false = {"none": float(np.mean(np.any((null == "better") | (null == "worse"), -1)))}
    if design.margin:
        above = draw([design.margin] * k)["verdict"]
        below = draw([-design.margin] * k)["verdict"]
        false["+margin"] = float(np.mean(np.any(np.isin(
            above, ("equivalent", "non-inferior", "better")), -1)))
        false["-margin"] = float(np.mean(np.any(np.isin(below, ("equivalent", "worse")), -1)))
    right = "worse" if effect > 0 else "better" if effect < 0 else "equivalent"
    at_effect = draw([effect] * k)
    power = float(np.mean(at_effect["verdict"] == right))
    fixed = next((n for n in range(2, 1000) if np.mean(
        draw([effect] * k, Design(design.alpha, design.margin, k, (n,)))["verdict"] == right)
        >= power), None)
    return {"false_verdicts": false,
            "verdicts": {v: float(np.mean(at_effect["verdict"] == v)) for v in decide.VERDICTS},
            "power": power, "mean_seeds": float(at_effect["seeds"].mean()),
            "mean_baseline_seeds": float(at_effect["baseline_seeds"].mean()),
            "fixed_seeds": fixed}


def check_flags(values) -> None:
    """The simulation's numbers in their ranges (a ValueError names the first that is not)."""
    for name, in_range, words in (
            ("alpha", lambda x: 0 < x < 1, "in (0, 1)"),
            ("margin", lambda x: 0 <= x < math.inf, ">= 0"),
            ("variants", lambda x: x >= 1, ">= 1"),
            ("sims", lambda x: x >= 1, ">= 1"),
            ("correlation", lambda x: -1 < x < 1, "in (-1, 1)"),
            ("effect", math.isfinite, "a finite number")):
        if not in_range(getattr(values, name)):
            raise ValueError(f"--{name}={getattr(values, name)!r} is out of range; give a "
                             f"number {words}.")


def main(argv=None) -> int:
    from absl import flags

    from inception_flax.utils import cli

    def define(values):
        for name, default, text in (
                ("variants", 1, "k: variants compared with the baseline"),
                ("min_seeds", 3, "seeds of each at the first look"),
                ("max_seeds", 11, "seeds of each at the last look"),
                ("seeds_per_stage", 2, "seeds added at each stage"),
                ("sims", 10_000, "simulated sweeps")):
            flags.DEFINE_integer(name, default, text, flag_values=values)
        for name, default, text in (
                ("alpha", 0.05, "family-wise error"),
                ("margin", 1.0, "equivalence margin, in seed standard deviations (0: none)"),
                ("correlation", 0.5, "correlation of a variant's and the baseline's seeds"),
                ("effect", 1.0, "true difference for the power, in seed standard deviations")):
            flags.DEFINE_float(name, default, text, flag_values=values)
        flags.DEFINE_bool("paired", True, "paired intervals (else Welch's)", flag_values=values)
        flags.DEFINE_enum("spending", "power", list(SPENDINGS), "the spending function",
                          flag_values=values)
        flags.DEFINE_enum("boundaries", "exact", list(BOUNDARIES), "exact boundaries, or "
                          "the rule before 2026-12-03", flag_values=values)
    values = cli.parse(argv, "python -m inception_flax.sweeps.sequential",
                       "The error rates, power and seeds of a design of sweep.until_decided, "
                       "by simulation (units: the seeds' standard deviation).", define)
    if isinstance(values, int):
        return values
    try:
        check_flags(values)
        design = Design(values.alpha, values.margin or None, values.variants,
                        looks(values.min_seeds, values.max_seeds, values.seeds_per_stage),
                        values.spending, values.boundaries)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return cli.EXIT_BAD_INPUT
    result = characteristics(design, values.correlation, values.effect, values.sims,
                             values.paired)
    print(json.dumps({"design": design.to_json(),
                      "alpha_at_looks": [design.alpha_at(j) for j in range(len(design.looks))],
                      "levels_at_looks": [design.levels(j) for j in range(len(design.looks))],
                      "correlation": values.correlation, "effect": values.effect,
                      "paired": values.paired, **result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
