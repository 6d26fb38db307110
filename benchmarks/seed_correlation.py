"""The evidence for the one rule of every table (paired or Welch): how much two variants'
runs of one seed are correlated, pooled over the committed pairs.

A seed fixes a run's data order and (for layers of the same path and shape) its initial
weights, in every variant. Within each comparison (a variant against its baseline over the
seeds both ran) the per-seed top-1 errors are centred on their means; the pooled correlation
of the centred values, with a Fisher-z interval on N − G degrees of freedom (N pairs in G
comparisons), says how much of a seed's luck two variants share. This script also checks
that interval's coverage by simulation at the committed group sizes, and gives, for n seeds
of each, the correlation above which a paired interval is narrower than Welch's on average
(both t-intervals at 95%, equal variances).

    uv run python benchmarks/seed_correlation.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "experiments", "results")
PAIRS = os.path.join(ROOT, "benchmarks", "results", "2026-12-02_cpu_core_split_pairs.json")
# (name, results folder, variant, baseline): the committed comparisons whose variant and
# baseline share their seeds' data order and initial weights (rf79_equal_cost, widened, is
# kept apart: its initial weights differ).
COMPARISONS = [
    ("quickstart fig5 - fig4", "quickstart/2026-11-28_zen3", "fig5", "fig4"),
    ("quickstart, one process, fig5 - fig4", "quickstart/2026-11-28_zen3/one_process", "fig5",
     "fig4"),
    ("factorization 35x35_fig4 - released", "factorization_35x35", "35x35_fig4", "released"),
    ("factorization 35x35_fig5 - released", "factorization_35x35", "35x35_fig5", "released"),
    ("receptive_field rf151 - rf299", "receptive_field", "rf151", "rf299"),
    ("receptive_field rf79 - rf299", "receptive_field", "rf79", "rf299"),
]


def errors(folder: str, variant: str) -> dict:
    out, root = {}, os.path.join(RESULTS, folder, variant)
    for name in sorted(os.listdir(root)):
        with open(os.path.join(root, name, "final.json")) as f:
            record = json.load(f)
        if record.get("status") == "done":
            out[int(name[4:])] = 100 * (1 - record["ema_top1"])
    return out


def groups() -> list[tuple[str, np.ndarray, np.ndarray]]:
    found = []
    for name, folder, variant, baseline in COMPARISONS:
        a, b = errors(folder, variant), errors(folder, baseline)
        seeds = sorted(set(a) & set(b))
        found.append((name, np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])))
    with open(PAIRS) as f:
        runs = json.load(f)["runs"]
    for group in ("pairs_2core", "pairs_1core"):
        by = {(r["variant"], r["seed"]): 100 * (1 - r["ema_top1"]) for r in runs
              if r["set"] == group}
        seeds = sorted({s for v, s in by if v == "fig4"})
        found.append((f"quickstart seeds 3-7 ({group}) fig5 - fig4",
                      np.array([by["fig5", s] for s in seeds]),
                      np.array([by["fig4", s] for s in seeds])))
    return found


def pooled(pairs) -> tuple[float, float, float, int]:
    """The pooled within-comparison correlation and its 95% Fisher-z interval."""
    a = np.concatenate([x - x.mean() for x, _ in pairs])
    b = np.concatenate([y - y.mean() for _, y in pairs])
    r = float(np.sum(a * b) / math.sqrt(np.sum(a * a) * np.sum(b * b)))
    df = len(a) - len(pairs)
    half = 1.96 / math.sqrt(df - 3)
    return r, math.tanh(math.atanh(r) - half), math.tanh(math.atanh(r) + half), df


def coverage(sizes: list[int], rho: float, sims: int = 4000, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(sims):
        pairs = []
        for n in sizes:
            x = rng.standard_normal(n)
            pairs.append((rho * x + math.sqrt(1 - rho ** 2) * rng.standard_normal(n)
                          + rng.normal(0, 3), x + rng.normal(0, 3)))
        _, low, high, _ = pooled(pairs)
        hits += low <= rho <= high
    return hits / sims


def break_even(n: int) -> float:
    """The correlation above which the paired 95% interval is narrower than Welch's on average
    (n seeds of each, equal variances: Welch's degrees of freedom 2n − 2)."""
    ratio = stats.t.ppf(0.975, 2 * n - 2) / stats.t.ppf(0.975, n - 1)
    return 1 - ratio ** 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json")
    args = parser.parse_args()
    found = groups()
    r, low, high, df = pooled([(x, y) for _, x, y in found])
    sizes = [len(x) for _, x, _ in found]
    result = {
        "comparisons": {name: {"variant": x.round(3).tolist(), "baseline": y.round(3).tolist(),
                               "r": float(np.corrcoef(x, y)[0, 1])} for name, x, y in found},
        "pooled_r": r, "ci95": [low, high], "pairs": int(sum(sizes)), "df": df,
        "coverage_of_the_interval": {rho: coverage(sizes, rho) for rho in (0.0, 0.6)},
        "break_even_r": {n: break_even(n) for n in (3, 4, 5, 10)}}
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
