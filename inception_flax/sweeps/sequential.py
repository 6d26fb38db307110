"""Seeds added until each comparison is decided (`sweep.until_decided`): the design, its looks,
and a simulation of what it decides (its error rates, power and seeds used).

**The design.** Every variant starts with `min_seeds` seeds (the first of `sweep.seeds`); after
each stage the table is read (a *look*), and only the variants still undecided, with the
baseline they are compared against, get `seeds_per_stage` more, up to `max_seeds`: looks at
n = min_seeds, min_seeds + seeds_per_stage, ..., max_seeds (the last look at max_seeds even
where the stages do not divide). A verdict, once reached, is frozen.

**The error.** Repeated looks at accumulating data inflate the error of any test made at each
of them; so each of the k comparisons gets α/k and spends it over its L planned looks: at look
j, with t_j = n_j / max_seeds, it spends α_j = (α/k)·(t_j³ − t_{j−1}³) (the power family of
spending functions, Kim & DeMets 1987, with ρ = 3: O'Brien and Fleming's shape, little at the
first looks and most at the last). The α_j add up to α/k, so by the union bound (Bonferroni
over looks and comparisons) every interval of every variant at every look covers its true
difference with probability ≥ 1 − α, whatever the looks decided: they are repeated confidence
intervals (Jennison & Turnbull, "Group Sequential Methods", 2000, ch. 9), a look prints them
at its α_j, and a verdict is false with probability ≤ α, family-wise. The union bound is exact
at any n, where the t-based group-sequential boundaries are approximations at n = 3; the cost
against them is some power, which `characteristics` measures (against a fixed design too).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys

import numpy as np

from inception_flax.sweeps import decide

SPENDING = 3  # ρ of the power-family spending function (module docstring)


@dataclasses.dataclass(frozen=True)
class Design:
    alpha: float
    margin: float | None
    comparisons: int  # k: the variants compared with the baseline
    looks: tuple[int, ...]  # the seeds of each comparison at each look

    def alpha_at(self, look: int) -> float:
        """α_j of one comparison at look `look` (0-based): (α/k)·(t_j³ − t_{j−1}³)."""
        spent = lambda j: (self.looks[j] / self.looks[-1]) ** SPENDING if j >= 0 else 0.0  # noqa: E731
        return decide.level(self.alpha, self.comparisons) * (spent(look) - spent(look - 1))

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"looks": list(self.looks),
                                           "spending": f"power family, rho {SPENDING}"}


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
        now = decide.compare(variants[..., :n], baseline[..., None, :n], paired,
                             design.alpha_at(j), design.margin)["verdict"]
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
    values = cli.parse(argv, "python -m inception_flax.sweeps.sequential",
                       "The error rates, power and seeds of a design of sweep.until_decided, "
                       "by simulation (units: the seeds' standard deviation).", define)
    if isinstance(values, int):
        return values
    try:
        check_flags(values)
        design = Design(values.alpha, values.margin or None, values.variants,
                        looks(values.min_seeds, values.max_seeds, values.seeds_per_stage))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return cli.EXIT_BAD_INPUT
    result = characteristics(design, values.correlation, values.effect, values.sims,
                             values.paired)
    print(json.dumps({"design": design.to_json(),
                      "alpha_at_looks": [design.alpha_at(j) for j in range(len(design.looks))],
                      "correlation": values.correlation, "effect": values.effect,
                      "paired": values.paired, **result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
