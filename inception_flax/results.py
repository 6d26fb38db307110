"""A sweep's results: its tables and plots, seeds aggregated.

    python -m inception_flax.results --workdir DIR
    python -m inception_flax.report DIR                 # the older spelling

writes DIR/results.md, DIR/results.tex (booktabs), DIR/results.csv, DIR/accuracy_vs_macs.png
and DIR/training_curves.png from DIR/sweep.json and each run's final.json and metrics.jsonl.
Errors are percentages (100 − accuracy) of the EMA weights. "95% CI" is the t-interval of a
variant's mean top-1 error over its seeds; "Δ top-1" is the variant's mean top-1 error minus the
baseline's, with a 95% Welch t-interval (n/a where either side has a single seed). The plot of
accuracy against cost draws the same intervals as the table (`accuracy_points`).
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
import sys

import numpy as np
from absl import flags

from inception_flax import cli, run_dir, run_log

NO_PLAN = "{} holds no sweep.json; give the --workdir of a sweep."
FOOTER = ("Errors of the EMA weights on the evaluation split, mean ± std over seeds, and the 95% "
          "t-interval of the mean. Δ top-1: difference to the baseline in points, 95% Welch "
          "interval.")
COLUMNS = ("variant", "params", "multiply-adds", "top-1 err %", "top-1 err 95% CI",
           "top-5 err %", "Δ top-1 (95% CI)", "images/s", "status")


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


def difference_interval(variant: list[float], baseline: list[float], confidence=0.95):
    """Mean difference and its Welch t-interval (nan bounds when either n < 2)."""
    diff = float(np.mean(variant) - np.mean(baseline))
    if len(variant) < 2 or len(baseline) < 2:
        return diff, math.nan, math.nan
    var_a, var_b = np.var(variant, ddof=1) / len(variant), np.var(baseline, ddof=1) / len(baseline)
    se = math.sqrt(var_a + var_b)
    if se == 0:
        return diff, diff, diff
    dof = (var_a + var_b) ** 2 / (var_a ** 2 / (len(variant) - 1) +
                                  var_b ** 2 / (len(baseline) - 1))
    from scipy import stats
    half = stats.t.ppf(0.5 + confidence / 2, dof) * se
    return diff, diff - half, diff + half


def collect(workdir: str) -> dict:
    """Per variant: the planned runs, their final records (None where not finished, or where
    the record is damaged: a warning names it) and their training curves. A record made under
    another config than the plan's (its config's identity, `run_dir.digest`, differs from the
    one `sweep.json` planned) is marked `stale` and not counted."""
    plan = run_dir.read_json(os.path.join(workdir, "sweep.json"))
    if plan is None:
        raise FileNotFoundError(NO_PLAN.format(workdir))
    variants = {}
    for run in plan["runs"]:
        entry = variants.setdefault(run["variant"], {
            "params": run["params"], "macs": run["macs"], "runs": []})
        path = os.path.join(workdir, run["dir"])
        final = run_dir.read_final(path)
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
    return {"plan": plan, "variants": variants}


def summarize(workdir: str, data: dict | None = None) -> list[dict]:
    data = data or collect(workdir)
    sweep = data["plan"]["sweep"]
    names = list(data["variants"])
    baseline = sweep.get("baseline") or names[0]
    paper = sweep.get("paper") or {}
    notes = sweep.get("notes") or {}

    def errors(entry, key):
        return [100 * (1 - r["final"][key]) for r in entry["runs"]
                if r["final"] and r["final"].get("status") == "done"]

    rows = []
    for name, entry in data["variants"].items():
        finals = [r["final"] for r in entry["runs"]]
        done = [f for f in finals if f and f.get("status") == "done"]
        statuses = [f.get("status") if f else "not run" for f in finals]
        # The cost each run actually had (fixed-cost sweeps rescale the width).
        params = done[0]["params"] if done else entry["params"]
        macs = done[0]["macs"] if done else entry["macs"]
        top1, top5 = errors(entry, "ema_top1"), errors(entry, "ema_top5")
        row = {"variant": name, "params": params, "macs": macs,
               "top1": mean_std(top1), "top1_ci": mean_interval(top1), "top5": mean_std(top5),
               "images_per_s": mean_std([f.get("images_per_s") for f in done])[0],
               "status": ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses)),
               "cpu_cores": core_split(done),
               "delta": None, "baseline": name == baseline, "paper": paper.get(name),
               "note": notes.get(name, "")}
        base = errors(data["variants"][baseline], "ema_top1") if baseline in data["variants"] \
            else []
        if name != baseline and top1 and base:
            row["delta"] = difference_interval(top1, base)
        rows.append(row)
    return rows


def _pm(value: tuple, digits=2) -> str:
    mean, std, n = value
    if n == 0:
        return "–"
    spread = f" ± {std:.{digits}f}" if not math.isnan(std) else ""
    return f"{mean:.{digits}f}{spread} (n={n})"


def _delta(row) -> str:
    if row["baseline"]:
        return "baseline"
    if row["delta"] is None:
        return "–"
    diff, low, high = row["delta"]
    if math.isnan(low):
        return f"{diff:+.2f} (n/a)"
    return f"{diff:+.2f} [{low:+.2f}, {high:+.2f}]"


def _interval(bounds) -> str:
    low, high = bounds
    return "n/a" if math.isnan(low) else f"[{low:.2f}, {high:.2f}]"


def _macs(macs: float) -> str:
    return f"{macs / 1e9:.3f} G" if macs >= 1e9 else f"{macs / 1e6:.2f} M"


def _cells(row, mark: str = "") -> list[str]:
    cells = [row["variant"] + mark, f"{row['params'] / 1e6:.2f} M", _macs(row["macs"]),
             _pm(row["top1"]), _interval(row["top1_ci"]), _pm(row["top5"]),
             _delta(row), f"{row['images_per_s']:.0f}"
             if not math.isnan(row["images_per_s"]) else "–", row["status"]]
    return cells


def _paper_cells(row) -> list[str]:
    paper = row["paper"] or {}
    return [f"{paper['top1']}" if "top1" in paper else "–",
            f"{paper['top5']}" if "top5" in paper else "–"]


def write(workdir: str) -> list[dict]:
    """Writes the tables and plots of `workdir`'s sweep; returns the rows. Shards of one sweep
    can finish at the same moment: the records are read and the tables written under a lock on
    the sweep's directory (`.results.lock`), so the last to write has seen every record."""
    if not os.path.exists(os.path.join(workdir, "sweep.json")):
        raise FileNotFoundError(NO_PLAN.format(workdir))
    with open(os.path.join(workdir, ".results.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        return _write_tables(workdir)


def _write_tables(workdir: str) -> list[dict]:
    data = collect(workdir)
    rows = summarize(workdir, data)
    has_paper = any(row["paper"] for row in rows)
    columns = list(COLUMNS) + (["paper top-1 err %", "paper top-5 err %"] if has_paper else [])
    noted = [r for r in rows if r["note"]]
    marks = {r["variant"]: f" ({chr(ord('a') + i)})" for i, r in enumerate(noted)}
    table = [_cells(r, marks.get(r["variant"], "")) + (_paper_cells(r) if has_paper else [])
             for r in rows]
    notes = [FOOTER] + [f"({chr(ord('a') + i)}) {r['variant']}: {r['note']}"
                        for i, r in enumerate(noted)] + core_split_notes(rows)

    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in table]
    for note in notes:
        lines += ["", note]
    _write(workdir, "results.md", "\n".join(lines) + "\n")

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["variant", "params", "macs", "top1_err_mean", "top1_err_std", "n",
                     "top1_err_ci_low", "top1_err_ci_high", "top5_err_mean", "top5_err_std",
                     "delta_top1", "delta_low", "delta_high", "images_per_s", "status",
                     "paper_top1_err", "paper_top5_err", "note", "cpu_cores"])
    for r in rows:
        delta = r["delta"] or (math.nan, math.nan, math.nan)
        paper = r["paper"] or {}
        writer.writerow([r["variant"], r["params"], r["macs"], r["top1"][0], r["top1"][1],
                         r["top1"][2], *r["top1_ci"], r["top5"][0], r["top5"][1], *delta,
                         r["images_per_s"], r["status"], paper.get("top1", ""),
                         paper.get("top5", ""), r["note"],
                         " ".join(map(str, r["cpu_cores"]))])
    _write(workdir, "results.csv", out.getvalue())

    def tex(text: str) -> str:
        return (text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%")
                .replace("&", r"\&").replace("#", r"\#").replace("±", r"$\pm$")
                .replace("Δ", r"$\Delta$").replace("–", "--").replace("×", r"$\times$")
                .replace("→", r"$\to$").replace("−", "--"))
    lines = ["\\begin{tabular}{l" + "r" * (len(columns) - 1) + "}", "\\toprule",
             " & ".join(tex(c) for c in columns) + " \\\\", "\\midrule"]
    lines += [" & ".join(tex(c) for c in cells) + " \\\\" for cells in table]
    lines.append("\\bottomrule")
    lines += [f"\\multicolumn{{{len(columns)}}}{{p{{0.9\\linewidth}}}}"
              f"{{\\footnotesize {tex(note)}}} \\\\" for note in notes]
    _write(workdir, "results.tex", "\n".join(lines + ["\\end{tabular}"]) + "\n")

    _plots(workdir, rows, data)
    return rows


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
    run_log.write_text_atomically(os.path.join(workdir, name), text)


def _save(fig, workdir: str, name: str) -> None:
    temporary = os.path.join(workdir, f".{name}.{os.getpid()}.png")
    fig.savefig(temporary, dpi=120)
    os.replace(temporary, os.path.join(workdir, name))


def accuracy_points(rows: list[dict]) -> list[dict]:
    """What `accuracy_vs_macs.png` draws, one point per variant with results: multiply-adds,
    mean top-1 error and its 95% interval (the table's numbers; no bar where n = 1)."""
    points = []
    for r in rows:
        mean, _, n = r["top1"]
        if n:
            low, high = r["top1_ci"]
            points.append({"variant": r["variant"], "macs": r["macs"], "top1": mean,
                           "low": low, "high": high, "n": n, "baseline": r["baseline"]})
    return points


def curve_bands(data: dict) -> dict:
    """What `training_curves.png` draws, per variant: the training loss at the steps every
    seed logged (mean, min, max over seeds), and the evaluated top-1 error (mean, min, max
    over the seeds evaluated at each step)."""
    def band(series):
        steps = sorted(set.intersection(*(set(c) for c in series))) if series else []
        if not steps:  # no run evaluated yet (or no step that every seed logged)
            return {"steps": [], "mean": [], "low": [], "high": [], "n": len(series)}
        values = np.array([[c[s] for s in steps] for c in series])
        return {"steps": steps, "mean": values.mean(0).tolist(), "low": values.min(0).tolist(),
                "high": values.max(0).tolist(), "n": len(series)}
    bands = {}
    for name, entry in data["variants"].items():
        losses = [dict(r["curve"]) for r in entry["runs"] if r["curve"]]
        evals = [dict(r["evals"]) for r in entry["runs"] if r["evals"]]
        if losses:
            bands[name] = {"loss": band(losses), "eval": band(evals)}
    return bands


def _plots(workdir: str, rows: list[dict], data: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = accuracy_points(rows)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    scale, unit = (1e9, "G") if max([p["macs"] for p in points] or [0]) >= 1e9 else (1e6, "M")
    for p in points:
        x = p["macs"] / scale
        bar = None if math.isnan(p["low"]) else [[p["top1"] - p["low"]], [p["high"] - p["top1"]]]
        ax.errorbar(x, p["top1"], yerr=bar, fmt="*" if p["baseline"] else "o",
                    markersize=11 if p["baseline"] else 6, capsize=4,
                    color="black" if p["baseline"] else None)
        label = p["variant"] + (" (baseline)" if p["baseline"] else "") + f", n={p['n']}"
        ax.annotate(label, (x, p["top1"]), textcoords="offset points", xytext=(6, 4), fontsize=7)
    ax.set_xlabel(f"multiply-adds per image ({unit})")
    ax.set_ylabel("top-1 error (%), EMA weights")
    ax.set_title("mean over seeds; bars: 95% t-interval of the mean", fontsize=9)
    ax.margins(x=0.25, y=0.15)
    fig.tight_layout()
    _save(fig, workdir, "accuracy_vs_macs.png")
    plt.close(fig)

    bands = curve_bands(data)
    fig, (loss_ax, eval_ax) = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    last = max([b["loss"]["steps"][-1] for b in bands.values() if b["loss"]["steps"]] or [1])
    for i, (name, band) in enumerate(bands.items()):
        color = f"C{i}"
        loss = band["loss"]
        loss_ax.plot(loss["steps"], loss["mean"], color=color, label=f"{name} (n={loss['n']})")
        if loss["n"] > 1:
            loss_ax.fill_between(loss["steps"], loss["low"], loss["high"], color=color,
                                 alpha=0.2, linewidth=0)
        evals = band["eval"]
        if evals["steps"]:
            spread = np.array([np.subtract(evals["mean"], evals["low"]),
                               np.subtract(evals["high"], evals["mean"])])
            shift = (i - (len(bands) - 1) / 2) * 0.01 * last  # keep variants' bars apart
            eval_ax.errorbar(np.add(evals["steps"], shift), evals["mean"], yerr=spread,
                             color=color, marker="o", capsize=3,
                             label=f"{name} (n={evals['n']})")
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("training loss")
    loss_ax.set_title("mean over seeds; band: lowest to highest seed", fontsize=9)
    eval_ax.set_xlabel("step")
    eval_ax.set_ylabel("top-1 error (%), EMA weights")
    eval_ax.set_title("evaluations: mean over seeds; bars: lowest to highest", fontsize=9)
    for ax in (loss_ax, eval_ax):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, workdir, "training_curves.png")
    plt.close(fig)


def main(argv=None) -> int:
    def define(values):
        flags.DEFINE_string("workdir", None, "The sweep's --workdir (it holds sweep.json).",
                            flag_values=values)
    values = cli.parse(argv, "python -m inception_flax.results",
                       "Tables (Markdown, LaTeX, CSV) and plots of a sweep's results, from what "
                       "is done; also `python -m inception_flax.report DIR`.", define,
                       positional="workdir")
    if isinstance(values, int):
        return values
    workdir = values.workdir or "no --workdir"
    try:
        write(workdir)
    except run_dir.Damaged as damaged:
        print(f"error: {damaged}; run the sweep's command again to write it anew.",
              file=sys.stderr)
        return 2
    except FileNotFoundError as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    with open(os.path.join(workdir, "results.md")) as f:
        print(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
