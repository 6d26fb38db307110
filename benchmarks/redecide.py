"""A sweep run until decided, decided again from its records under another rule: every look
with its seeds, level, difference interval and verdict, and where the sweep would have
stopped. Reads the records only (nothing is written).

    uv run python benchmarks/redecide.py --workdir experiments/results/fig5_vs_fig4 \
        --boundaries exact --population eval_set

`--boundaries` (exact | bonferroni) and `--population` (distribution | eval_set) replace the
recorded design's; the looks, seeds, α, margin and spending stay the sweep's. Every look is
shown, also after a variant's verdict (the verdict stays the first one reached).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from inception_flax.run import run_dir  # noqa: E402
from inception_flax.sweeps import decide, decisions, sequential  # noqa: E402


def looks_of(workdir: str, boundaries: str, population: str) -> dict:
    plan = run_dir.read_json(os.path.join(workdir, "sweep.json"))
    variants = list(dict.fromkeys(run["variant"] for run in plan["runs"]))
    design, fixed = decisions.design_from(plan["sweep"], variants)
    design = dataclasses.replace(design, boundaries=boundaries, population=population)
    records = {v: {} for v in variants}
    for run in plan["runs"]:
        final = run_dir.read_final(os.path.join(workdir, run["dir"]), warn=False)
        if final and final.get("status") == "done":
            records[run["variant"]][run["seed"]] = final
    rows, stopped = [], {}
    for j, n in enumerate(design.looks):
        difference, equivalence = design.levels(j)
        order = fixed["seeds"][:n]
        for variant in fixed["compared"]:
            base, mine = records[fixed["baseline"]], records[variant]
            v, b, paired = decide.errors_compared(mine, base, order)
            if min(len(v), len(b)) < n:
                continue  # this look's runs are not all there
            examples = (decide.examples_compared(mine, base, order, paired)
                        if population == "distribution" else None)
            if population == "distribution" and examples is None:
                raise SystemExit(f"{workdir}'s records hold no per-example results; use "
                                 "--population eval_set.")
            result = decide.compare(v, b, paired, difference, design.margin, equivalence,
                                    examples)
            d, e = result["difference"], result["equivalence"]
            verdict = str(result["verdict"])
            if verdict != "undecided":
                stopped.setdefault(variant, {"look": j + 1, "seeds": n, "verdict": verdict})
            rows.append({"look": j + 1, "seeds": n, "variant": variant,
                         "level": 1 - difference, "diff": float(d.diff),
                         "low": float(d.low), "high": float(d.high),
                         "equivalence": [float(e.low), float(e.high)], "verdict": verdict})
    return {"workdir": workdir, "design": design.to_json(), "looks": rows, "stopped": stopped}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--boundaries", choices=sequential.BOUNDARIES, default="exact")
    parser.add_argument("--population", choices=sequential.POPULATIONS, default="eval_set")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    result = looks_of(args.workdir, args.boundaries, args.population)
    print(f"| look | seeds of each | level | Δ top-1 | equivalence interval | verdict |")
    print("|---:|---:|---:|---:|---:|---|")
    for r in result["looks"]:
        print(f"| {r['look']} | {r['seeds']} | {100 * r['level']:.3f}% | {r['diff']:+.2f} "
              f"[{r['low']:+.2f}, {r['high']:+.2f}] | [{r['equivalence'][0]:+.2f}, "
              f"{r['equivalence'][1]:+.2f}] | {r['verdict']} |")
    print("stopped:", json.dumps(result["stopped"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
