"""A sweep's results: its tables (Markdown, LaTeX, CSV), seeds aggregated, each variant's
verdict against the baseline, and its figures (`plots`).

    python -m inception_flax.results --workdir DIR      # its command line (results.py)

writes DIR/results.md, results.tex (booktabs), results.csv, forest.png, accuracy_vs_macs.png
and training_curves.png from DIR/sweep.json, each run's final.json and metrics.jsonl and, for a
sweep run until decided, DIR/decisions.json. Errors are percentages (100 − accuracy) of the EMA
weights. "95% CI" is the t-interval of a variant's mean top-1 error over its seeds; "Δ top-1"
is its difference to the baseline, at the level the table's verdicts are made at (`decide`:
paired or Welch, Bonferroni over the variants and looks, the verdicts, what would decide). The
footer of every table says what its numbers mean.
"""

from __future__ import annotations

import csv
import io
import math
import os

import numpy as np

from inception_flax.sweeps import decide, decisions, plots, sequential
from inception_flax.run import run_dir, run_lock
from inception_flax.utils import files

NO_PLAN = "{} holds no sweep.json; give the --workdir of a sweep."
def mean_std(values) -> tuple[float, float, int]:
    values = [v for v in values if v is not None]
    if not values:
        return math.nan, math.nan, 0
    std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return float(np.mean(values)), std, len(values)


def mean_interval(values: list[float], confidence=0.95) -> tuple[float, float]:
    """The t-interval of the mean of `values` (nan bounds when there are fewer than 2)."""
    if len(values) < 2:
        return math.nan, math.nan
    mean = float(np.mean(values))
    from scipy import stats  # here: 2 s to import, and a training process needs none
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * float(
        np.std(values, ddof=1)) / math.sqrt(len(values))
    return mean - half, mean + half


def collect(workdir: str, rebuild_decisions: bool = False) -> dict:
    """Per variant: the planned runs, their final records (None where not finished, or where
    the record is damaged: a warning names it; {"status": "training"} where a live process
    holds the run) and their training curves; and the decisions of a sweep run until decided
    (`decided`: from the records, checked against `decisions.json`), else {}. A record made
    under another config than the plan's (its config's identity, `run_dir.digest`, differs
    from the one `sweep.json` planned) is marked `stale` and not counted."""
    plan = run_dir.read_json(os.path.join(workdir, "sweep.json"))
    if plan is None:
        raise FileNotFoundError(NO_PLAN.format(workdir))
    variants = {}
    for run in plan["runs"]:
        entry = variants.setdefault(run["variant"], {
            "params": run["params"], "macs": run["macs"], "runs": []})
        path = os.path.join(workdir, run["dir"])
        final = run_dir.read_final(path)
        if final is None and run_lock.holder(path):
            final = {"status": "training"}
        if final and "identity" in run and isinstance(final.get("config"), dict) \
                and run_dir.digest(final["config"]) != run["identity"]:
            final = {"status": "stale"}
        curve, evals = [], []
        for record in run_dir.read_metrics(path):
            if "loss" in record:
                curve.append((record["step"], record["loss"]))
            if "ema_top1" in record:
                evals.append((record["step"], 100 * (1 - record["ema_top1"])))
        entry["runs"].append({"seed": run["seed"], "final": final, "curve": curve,
                              "evals": evals})
    return {"plan": plan, "variants": variants,
            "decisions": decided(workdir, plan, rebuild_decisions)}


def decided(workdir: str, plan: dict, rebuild: bool = False) -> dict:
    """The decisions of a sweep run until decided, made again from its records and checked
    against `decisions.json` (`decisions.settle`: a `Mismatch` where they disagree, unless
    `rebuild`); {} for a fixed design."""
    if not plan["sweep"].get("until_decided"):
        return {}
    variants = list(dict.fromkeys(run["variant"] for run in plan["runs"]))
    design, fixed = decisions.design_from(plan["sweep"], variants)
    identities = {(run["variant"], run["seed"]): run.get("identity") for run in plan["runs"]}
    return decisions.settle(workdir, design, fixed, identities, rebuild)


def summarize(workdir: str, data: dict | None = None) -> list[dict]:
    """One row per variant: costs, errors (mean ± std over done seeds, the 95% t-interval of
    the mean), images/s, status, and its comparison with the baseline (`compare_all`)."""
    data = data or collect(workdir)
    sweep = data["plan"]["sweep"]
    names = list(data["variants"])
    baseline = sweep.get("baseline") or names[0]
    paper, notes = sweep.get("paper") or {}, sweep.get("notes") or {}
    rows = []
    for name, entry in data["variants"].items():
        finals = [r["final"] for r in entry["runs"]]
        done = [f for f in finals if f and f.get("status") == "done"]
        statuses = [f.get("status") if f else "not run" for f in finals]
        # The cost each run actually had (fixed-cost sweeps rescale the width).
        params = done[0]["params"] if done else entry["params"]
        macs = done[0]["macs"] if done else entry["macs"]
        top1 = [100 * (1 - f["ema_top1"]) for f in done]
        top5 = [100 * (1 - f["ema_top5"]) for f in done]
        rows.append({"variant": name, "params": params, "macs": macs,
                     "top1": mean_std(top1), "top1_ci": mean_interval(top1),
                     "top5": mean_std(top5),
                     "images_per_s": mean_std([f.get("images_per_s") for f in done])[0],
                     "status": ", ".join(f"{statuses.count(s)} {s}"
                                         for s in dict.fromkeys(statuses)),
                     "cpu_cores": core_split(done), "baseline": name == baseline,
                     "paper": paper.get(name), "note": notes.get(name, ""), "comparison": None})
    compare_all(rows, data)
    return rows


POPULATION_WORDS = {"distribution": "over seeds and test examples",
                    "eval_set": "over seeds, on these test examples"}


def settings(data: dict) -> dict:
    """The table's statistical settings: α, the margin, the baseline, k (variants compared
    with it), α/k, the seeds' order, the design of a sweep run until decided (None for a
    fixed design), and the population its verdicts are about (`decide`, "Populations";
    `shows_population`: the sweep recorded one, so the table shows both intervals: a sweep
    made before 2026-12-03 did not, and its tables stay as they were)."""
    sweep, names = data["plan"]["sweep"], list(data["variants"])
    baseline = sweep.get("baseline") or names[0]
    k = len([n for n in names if n != baseline]) if baseline in names else 0
    design = data.get("decisions", {}).get("design")
    design = sequential.Design.from_json(design) if design else None
    alpha = float(sweep.get("alpha", 0.05))
    return {"alpha": alpha, "margin": sweep.get("margin") or None, "k": k,
            "baseline": baseline, "alpha_each": decide.level(alpha, max(k, 1)),
            "seed_order": list(sweep.get("seeds") or []), "design": design,
            "population": design.population if design else sweep.get("population",
                                                                      "eval_set"),
            "shows_population": "population" in sweep}


def compare_all(rows: list[dict], data: dict) -> None:
    """Fills each variant's `comparison` with the baseline (`decide`): paired over the seeds
    both have done where each pair shares its data order, Welch's otherwise; the intervals at
    α' (and α' a side for equivalence), for the table's population (over the seeds and the
    test examples where the records hold per-example results, else over the seeds), the other
    population's too, the verdict, Holm-adjusted p-values of the difference, and what would
    decide an undecided one. For a sweep run until decided, each variant at its latest look
    (`decisions.json`): that look's seeds, levels and (frozen) verdict."""
    s = settings(data)
    if not s["k"]:
        return
    looks = data.get("decisions", {}).get("variants", {})
    base = _done_by_seed(data["variants"][s["baseline"]])
    compared = []
    for row in rows:
        if row["baseline"]:
            continue
        runs = _done_by_seed(data["variants"][row["variant"]])
        order = s["seed_order"] or sorted(set(runs) | set(base))
        look = looks.get(row["variant"])
        levels = (s["alpha_each"], s["alpha_each"])
        if s["design"] and look:  # the seeds and levels of its latest look
            order, levels = order[:look["seeds"]], s["design"].levels(look["look"])
        elif s["design"]:  # no look yet: its first look's seeds and levels, and no verdict
            order, levels = order[:s["design"].looks[0]], s["design"].levels(0)
            look = {"verdict": "undecided", "look": None}
        v, b, paired = decide.errors_compared(runs, base, order)
        examples = (decide.examples_compared(runs, base, order, paired)
                    if s["shows_population"] and len(v) and len(b) else None)
        row["comparison"] = _comparison(v, b, paired, levels, s["margin"], look, examples,
                                        s["population"])
        compared.append(row["comparison"])
    tested = [c for c in compared if not math.isnan(c["p"])]
    for c, adjusted in zip(tested, decide.holm([c["p"] for c in tested])):
        c["p_holm"] = float(adjusted)


def _comparison(v: list, b: list, paired: bool, levels: tuple, margin: float | None,
                look: dict | None, examples=None, population: str = "eval_set") -> dict:
    """One row's comparison at `levels` (α of the difference interval, α a side of the
    equivalence test), for `population` where `examples` allow it."""
    alpha, alpha_equivalence = levels
    used = population if examples is not None or population == "eval_set" else "eval_set"
    result = (decide.compare(v, b, paired, alpha, margin, alpha_equivalence,
                             examples if used == "distribution" else None)
              if len(v) and len(b) else None)
    verdict = (look or {}).get("verdict") or (str(result["verdict"]) if result else
                                               "undecided")
    d = result["difference"] if result else None
    e = result["equivalence"] if result else None
    other = None
    if examples is not None and result:  # the other population's interval, at that level
        flipped = decide.compare(v, b, paired, alpha, margin, alpha_equivalence,
                                 None if used == "distribution" else examples)["difference"]
        other = {"population": "eval_set" if used == "distribution" else "distribution",
                 "low": float(flipped.low), "high": float(flipped.high)}
    comparison = {
        "diff": float(d.diff) if d else math.nan, "low": float(d.low) if d else math.nan,
        "high": float(d.high) if d else math.nan, "alpha": alpha,
        "alpha_equivalence": alpha_equivalence,
        "equivalence": (float(e.low), float(e.high)) if e else (math.nan, math.nan),
        "test": "paired" if paired else "Welch", "n": (len(v),) if paired else (len(v), len(b)),
        "verdict": verdict, "look": (look or {}).get("look"),
        "pending": look is not None and look.get("look") is None,
        "population": used, "other": other,
        "p": decide.p_value(v, b, paired) if min(len(v), len(b)) > 1 else math.nan,
        "p_holm": math.nan, "to_decide": None}
    if verdict == "undecided" and d is not None:
        comparison["to_decide"] = decide.to_decide(float(d.spread), min(len(v), len(b)),
                                                   alpha, margin, paired)
    return comparison


def _done_by_seed(entry: dict) -> dict:
    return {r["seed"]: r["final"] for r in entry["runs"]
            if r["final"] and r["final"].get("status") == "done"}


def _pm(value: tuple, digits=2) -> str:
    mean, std, n = value
    if n == 0:
        return "–"
    spread = f" ± {std:.{digits}f}" if not math.isnan(std) else ""
    return f"{mean:.{digits}f}{spread} (n={n})"


def _bounds(low: float, high: float) -> str:
    return "n/a" if math.isnan(low) else f"[{low:+.2f}, {high:+.2f}]"


def _delta(row, one_level: bool) -> str:
    c = row["comparison"]
    if row["baseline"]:
        return "baseline"
    if c is None or math.isnan(c["diff"]):
        return "–"
    n = f"{c['n'][0]} pairs" if c["test"] == "paired" else f"{c['n'][0]}+{c['n'][1]}"
    if not one_level:  # a sweep run until decided: each row at its look's level
        n += f", {100 * (1 - c['alpha']):.4g}%"
    if math.isnan(c["low"]):
        return f"{c['diff']:+.2f} (n/a: {c['test']}, {n})"
    return f"{c['diff']:+.2f} {_bounds(c['low'], c['high'])} ({c['test']}, {n})"


def _verdict(row, margin) -> str:
    c = row["comparison"]
    if c is None:
        return "–"
    verdict = c["verdict"]
    if verdict == "equivalent":
        verdict += f" (±{margin:g})"
    elif verdict == "non-inferior":
        verdict += f" (+{margin:g})"
    if c["look"] is not None:
        verdict += f", look {c['look'] + 1} ({c['n'][0]} seeds)"
    elif c["pending"]:
        verdict += ", no look yet"
    return verdict


def _to_decide(row, margin) -> str:
    c = row["comparison"]
    if c is None or c["to_decide"] is None or math.isnan(c["to_decide"]["detectable"]):
        return "–"
    t = c["to_decide"]
    seeds = lambda n: f"{n} seeds" if n else "> 1000 seeds"  # noqa: E731
    text = f"detects ≥ {t['detectable']:.2f}"
    if margin:
        text += (f"; ±{margin:g}: {seeds(t['seeds_equivalence'])}; "
                 f"{margin:g} apart: {seeds(t['seeds_difference'])}")
    return text


def _interval(bounds) -> str:
    low, high = bounds
    return "n/a" if math.isnan(low) else f"[{low:.2f}, {high:.2f}]"


def _macs(macs: float) -> str:
    return f"{macs / 1e9:.3f} G" if macs >= 1e9 else f"{macs / 1e6:.2f} M"


def _cells(row, s: dict, mark: str = "") -> list[str]:
    c = row["comparison"]
    cells = [row["variant"] + mark, f"{row['params'] / 1e6:.2f} M", _macs(row["macs"]),
             _pm(row["top1"]), _interval(row["top1_ci"]), _pm(row["top5"]),
             _delta(row, s["design"] is None)]
    if s["shows_population"]:
        other = (c or {}).get("other")
        cells.append(_bounds(other["low"], other["high"]) if other else "–")
    if s["margin"]:
        cells.append(_bounds(*c["equivalence"]) if c else "–")
    cells += [_verdict(row, s["margin"]), _to_decide(row, s["margin"]),
              f"{row['images_per_s']:.0f}" if not math.isnan(row["images_per_s"]) else "–",
              row["status"]]
    return cells


def _paper_cells(row) -> list[str]:
    paper = row["paper"] or {}
    return [f"{paper['top1']}" if "top1" in paper else "–",
            f"{paper['top5']}" if "top5" in paper else "–"]


def columns(s: dict, has_paper: bool) -> list[str]:
    if s["design"] is None:
        level, twice = (f"{100 * (1 - a):.4g}% CI" for a in (s["alpha_each"],
                                                           2 * s["alpha_each"]))
    else:
        level = twice = "CI at its look's level"
    names = ["variant", "params", "multiply-adds", "top-1 err %", "top-1 err 95% CI",
             "top-5 err %", f"Δ top-1 [{level}]"]
    if s["shows_population"]:
        other = "eval_set" if s["population"] == "distribution" else "distribution"
        names[-1] = f"Δ top-1 [{level}, {POPULATION_WORDS[s['population']]}]"
        names.append(f"Δ [{POPULATION_WORDS[other]}]")
    if s["margin"]:
        names.append(f"Δ for equivalence [{twice}]")
    names += ["verdict", "to decide", "images/s", "status"]
    return names + (["paper top-1 err %", "paper top-5 err %"] if has_paper else [])


def footer(s: dict, rows: list[dict]) -> list[str]:
    """What every number of the table means (the table's own α, k, design and margin)."""
    notes = ["Errors of the EMA weights on the evaluation split: mean ± std over a variant's "
             "done seeds (n), and the 95% t-interval of its mean."]
    if not s["k"]:
        return notes
    design, percent = s["design"], lambda a: f"{100 * (1 - a):.4g}%"  # noqa: E731
    if design is None:
        level = (f"at 1 − α/k = {percent(s['alpha_each'])} (α = {s['alpha']:g}, k = {s['k']} "
                 "variant(s) against the baseline: Bonferroni, so that the chance of any false "
                 "verdict in the table is at most α)")
        twice = f"1 − 2α/k = {percent(2 * s['alpha_each'])}"
    else:
        spent = (f"at the level of the variant's latest look (shown): the sweep added seeds "
                 f"until decided, looks at {', '.join(map(str, design.looks))} seeds, each "
                 f"comparison spending α/k = {s['alpha'] / s['k']:.4g} (α = {s['alpha']:g}, "
                 f"k = {s['k']}) over its looks ")
        if design.boundaries == "bonferroni":  # the rule before 2026-12-03, as it said itself
            level = (spent + f"as (n/{design.looks[-1]})³ (inception_flax/sweeps/sequential.py): "
                     "the chance of any false verdict in the table, over all looks, is at most "
                     "α; a verdict once reached is frozen")
            twice = "twice that level's α"
        else:
            shape = {"power": f"as (n/{design.looks[-1]})³ (power family)",
                     "obrien_fleming": "by Lan and DeMets' O'Brien-Fleming-like function",
                     "pocock": "by Lan and DeMets' Pocock-like function"}[design.spending]
            level = (spent + f"{shape}, at exact group-sequential boundaries (on the t scale "
                     "simulated for paired t statistics; Welch's intervals at the same tail "
                     "probabilities: inception_flax/sweeps/sequential.py): repeated confidence "
                     "intervals, so the chance of any false verdict in the table, over all "
                     "looks, is at most α; a verdict once reached is frozen")
            twice = "the one-sided boundary of the look's equivalence test"
    notes.append(
        "Δ top-1: the variant's top-1 error minus the baseline's, in points (> 0: worse): a "
        "paired t-interval over the seeds both have done where each pair shares its data "
        f"order (\"pairs\"), else Welch's (\"n+n\"), {level}"
        + (f"; for equivalence at {twice}, against the margin ±{s['margin']:g} point"
           f"{'' if s['margin'] == 1 else 's'}."
           if s["margin"] else "; no margin was set, so no equivalence is judged."))
    if s["shows_population"]:
        notes.append(population_note(s, rows))
    notes.append("Verdict: worse or better where the Δ interval excludes 0; equivalent where the "
                 "equivalence interval lies within ±margin; non-inferior where its upper end is "
                 "below +margin; else undecided. To decide (undecided rows): the smallest "
                 "difference its seeds detect with 80% power, and the seeds (of each) that give "
                 "80% power to show equivalence within ±margin, or a true difference of the "
                 "margin, in a fixed design at the row's level, from the observed spread "
                 "(inception_flax/sweeps/decide.py). The CSV adds each difference test's p-value, "
                 "Holm-adjusted over the k variants; the verdicts do not use it.")
    if any(r["status"] != f"{r['top1'][2]} done" for r in rows):
        notes.append("Failed, diverged or unfinished seeds are shown under status and not "
                     "counted in n.")
    return notes


def population_note(s: dict, rows: list[dict]) -> str:
    """What the two Δ intervals are about, and the rows whose records could not give the
    table's population (no per-example results)."""
    fallback = [r["variant"] for r in rows if r["comparison"]
                and r["comparison"]["population"] != s["population"]]
    note = ("Populations: every seed is evaluated on the same test examples. The interval "
            "\"over seeds and test examples\" covers the difference on new test data drawn "
            "like it as well as new seeds (two-way variance components, seeds × examples, "
            "method of moments, Satterthwaite's degrees of freedom: "
            "inception_flax/sweeps/decide.py, components_interval); the one \"over seeds, on "
            "these test examples\" covers new seeds on this test set only. The verdicts use "
            f"the first ({s['population']}, sweep.population)" if s["population"] ==
            "distribution" else
            "Populations: every seed is evaluated on the same test examples. The interval "
            "\"over seeds, on these test examples\" covers new seeds on this test set only; "
            "the one \"over seeds and test examples\" also covers the test set's own "
            "sampling (inception_flax/sweeps/decide.py, components_interval). The verdicts use "
            f"the first ({s['population']}, sweep.population)")
    if fallback:
        note += (f"; {', '.join(fallback)}: records without per-example results, so over "
                 "the seeds alone")
    return note + ", at the same level as the other."


def write(workdir: str, rebuild_decisions: bool = False) -> list[dict]:
    """Writes the tables and plots of `workdir`'s sweep; returns the rows. Shards of one sweep
    can finish at the same moment: the records are read and the tables written under a lock on
    the sweep's directory (`.results.lock`), so the last to write has seen every record."""
    if not os.path.exists(os.path.join(workdir, "sweep.json")):
        raise FileNotFoundError(NO_PLAN.format(workdir))
    with files.exclusive(os.path.join(workdir, ".results.lock")):
        return _write_tables(workdir, rebuild_decisions)


def _write_tables(workdir: str, rebuild_decisions: bool = False) -> list[dict]:
    data = collect(workdir, rebuild_decisions)
    rows = summarize(workdir, data)
    s = settings(data)
    has_paper = any(row["paper"] for row in rows)
    names = columns(s, has_paper)
    noted = [r for r in rows if r["note"]]
    marks = {r["variant"]: f" ({chr(ord('a') + i)})" for i, r in enumerate(noted)}
    table = [_cells(r, s, marks.get(r["variant"], "")) + (_paper_cells(r) if has_paper else [])
             for r in rows]
    notes = footer(s, rows) + [f"({chr(ord('a') + i)}) {r['variant']}: {r['note']}"
                               for i, r in enumerate(noted)] + core_split_notes(rows)

    lines = ["| " + " | ".join(names) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(names))) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in table]
    for note in notes:
        lines += ["", note]
    _write(workdir, "results.md", "\n".join(lines) + "\n")
    _write(workdir, "results.csv", _csv(rows, s))
    _write(workdir, "results.tex", _tex(names, table, notes))
    plots.draw(workdir, rows, data, s["margin"])
    return rows


def _csv(rows: list[dict], s: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["variant", "params", "macs", "top1_err_mean", "top1_err_std", "n",
                     "top1_err_ci_low", "top1_err_ci_high", "top5_err_mean", "top5_err_std",
                     "delta_top1", "delta_low", "delta_high", "delta_confidence",
                     "equivalence_low", "equivalence_high", "equivalence_confidence", "margin",
                     "test", "n_compared", "verdict", "p", "p_holm", "detectable",
                     "seeds_equivalence", "seeds_difference", "images_per_s", "status",
                     "paper_top1_err", "paper_top5_err", "note", "cpu_cores"]
                    + (["population", "other_population", "other_delta_low",
                        "other_delta_high"] if s["shows_population"] else []))
    for r in rows:
        c = r["comparison"] or {}
        t = c.get("to_decide") or {}
        paper = r["paper"] or {}
        writer.writerow([
            r["variant"], r["params"], r["macs"], r["top1"][0], r["top1"][1], r["top1"][2],
            *r["top1_ci"], r["top5"][0], r["top5"][1], c.get("diff", ""), c.get("low", ""),
            c.get("high", ""), 1 - c["alpha"] if c else "",
            *(c.get("equivalence", ("", "")) if s["margin"] else ("", "")),
            1 - 2 * c["alpha_equivalence"] if c and s["margin"] else "", s["margin"] or "",
            c.get("test", ""), "+".join(map(str, c.get("n", ()))),
            c.get("verdict", "baseline" if r["baseline"] else ""), c.get("p", ""),
            c.get("p_holm", ""), t.get("detectable", ""), t.get("seeds_equivalence") or "",
            t.get("seeds_difference") or "", r["images_per_s"], r["status"],
            paper.get("top1", ""), paper.get("top5", ""), r["note"],
            " ".join(map(str, r["cpu_cores"]))]
            + ([c.get("population", ""), *(((c.get("other") or {}).get(k, "") for k in
                                            ("population", "low", "high")))]
               if s["shows_population"] else []))
    return out.getvalue()


def _tex(names: list[str], table: list[list[str]], notes: list[str]) -> str:
    def tex(text: str) -> str:
        return (text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%")
                .replace("&", r"\&").replace("#", r"\#").replace("±", r"$\pm$")
                .replace("Δ", r"$\Delta$").replace("–", "--").replace("×", r"$\times$")
                .replace("→", r"$\to$").replace("−", "--").replace("≥", r"$\geq$")
                .replace("α", r"$\alpha$").replace("·", r"$\cdot$"))
    lines = ["\\begin{tabular}{l" + "r" * (len(names) - 1) + "}", "\\toprule",
             " & ".join(tex(c) for c in names) + " \\\\", "\\midrule"]
    lines += [" & ".join(tex(c) for c in cells) + " \\\\" for cells in table]
    lines.append("\\bottomrule")
    lines += [f"\\multicolumn{{{len(names)}}}{{p{{0.9\\linewidth}}}}"
              f"{{\\footnotesize {tex(note)}}} \\\\" for note in notes]
    return "\n".join(lines + ["\\end{tabular}"]) + "\n"


def core_split(records: list[dict]) -> list:
    """The distinct CPU core counts the runs of `records` were trained with ("?" for a run on
    a CPU that did not record them; runs on an accelerator are left out)."""
    return sorted({r.get("cpu_cores", "?") for r in records
                   if r.get("backend", "cpu") == "cpu"}, key=str)


def core_split_notes(rows: list[dict]) -> list[str]:
    """A footnote where the table's runs were trained under different CPU core splits: XLA:CPU
    rounds by the cores a process has, and any change of rounding sends a run along another
    trajectory within its first steps (benchmarks/NOTES.md), as another seed would."""
    splits = {}
    for row in rows:
        for cores in row["cpu_cores"]:
            splits.setdefault(cores, []).append(row["variant"])
    if len(splits) < 2:
        return []
    said = "; ".join(f"{cores} core(s): {', '.join(names)}"
                     for cores, names in sorted(splits.items(), key=lambda item: str(item[0])))
    return [f"Runs trained under different CPU core splits ({said}). XLA:CPU rounds by the "
            "cores a process has, and a change of rounding sends a run along another trajectory "
            "within its first steps, as another seed does; no effect of the core count itself "
            "was found (benchmarks/NOTES.md, core split), but compare variants trained alike."]


def _write(workdir: str, name: str, text: str) -> None:
    """Whole or not at all: two shards of a sweep may write the tables at once."""
    files.write_text_atomically(os.path.join(workdir, name), text)
