"""A sweep's figures, drawn from the table's own numbers (`results.summarize`):

- `forest.png`: the figure an ablation is read from. Each variant's difference in top-1 error
  to the baseline, with its interval at the table's level (thin) and, where the sweep has a
  margin, its equivalence interval (thick) against the ±margin band; the verdict beside it.
- `accuracy_vs_macs.png`: each variant's mean top-1 error against its multiply-adds, with the
  95% interval of the mean; variants named in a legend (labels beside points overlapped).
- `training_curves.png`: the training loss over steps (mean over seeds, a band from the lowest
  to the highest); beside it the evaluated error, only where runs were evaluated at two or more
  steps (a single evaluation per run is the table's number, not a curve).
"""

from __future__ import annotations

import math
import os

import numpy as np

MARKERS = "o^sDvP<>Xh"


def draw(workdir: str, rows: list[dict], data: dict, margin: float | None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    _forest(workdir, rows, margin)
    _accuracy_vs_macs(workdir, rows)
    _training_curves(workdir, data)


def forest_points(rows: list[dict]) -> list[dict]:
    """What `forest.png` draws, one line per compared variant (the table's numbers)."""
    points = []
    for row in rows:
        c = row.get("comparison")
        if c:
            points.append({"variant": row["variant"], "diff": c["diff"], "low": c["low"],
                           "high": c["high"], "equivalence": c["equivalence"],
                           "verdict": c["verdict"]})
    return points


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


def _forest(workdir: str, rows: list[dict], margin: float | None) -> None:
    import matplotlib.pyplot as plt
    points = forest_points(rows)
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.45 * max(len(points), 1)))
    if margin:
        ax.axvspan(-margin, margin, color="C2", alpha=0.12, linewidth=0,
                   label=f"±margin ({margin:g} point{'' if margin == 1 else 's'})")
    ax.axvline(0, color="black", linewidth=0.8)
    colors = {"worse": "C3", "better": "C0", "equivalent": "C2", "non-inferior": "C2",
              "undecided": "0.4"}
    for i, p in enumerate(reversed(points)):
        color = colors.get(p["verdict"], "0.4")
        if not math.isnan(p["low"]):
            ax.plot([p["low"], p["high"]], [i, i], color=color, linewidth=1.2)
        low, high = p["equivalence"]
        if margin and not math.isnan(low):
            ax.plot([low, high], [i, i], color=color, linewidth=4, alpha=0.6)
        ax.plot(p["diff"], i, "o", color=color)
        ax.annotate(p["verdict"], (1.01, i), xycoords=("axes fraction", "data"),
                    va="center", fontsize=8, color=color)
    ax.set_yticks(range(len(points)), [p["variant"] for p in reversed(points)], fontsize=8)
    ax.set_ylim(-0.7, len(points) - 0.3)
    ax.set_xlabel("difference in top-1 error to the baseline (points; > 0: worse)")
    ax.set_title("thin: the table's Δ interval; thick: its equivalence interval", fontsize=9)
    if margin:
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    _save(fig, workdir, "forest.png")
    plt.close(fig)


def _accuracy_vs_macs(workdir: str, rows: list[dict]) -> None:
    import matplotlib.pyplot as plt
    points = accuracy_points(rows)
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    scale, unit = (1e9, "G") if max([p["macs"] for p in points] or [0]) >= 1e9 else (1e6, "M")
    xs = [p["macs"] / scale for p in points]
    step = 0.015 * ((max(xs) - min(xs)) or max(xs)) if xs else 0.0  # equal costs drawn apart
    for i, p in enumerate(points):
        bar = None if math.isnan(p["low"]) else [[p["top1"] - p["low"]], [p["high"] - p["top1"]]]
        label = p["variant"] + (" (baseline)" if p["baseline"] else "") + f", n={p['n']}"
        same = [j for j, x in enumerate(xs) if x == xs[i]]
        x = xs[i] + step * (same.index(i) - (len(same) - 1) / 2)
        ax.errorbar(x, p["top1"], yerr=bar, capsize=4, label=label,
                    fmt="*" if p["baseline"] else MARKERS[i % len(MARKERS)],
                    markersize=11 if p["baseline"] else 6,
                    color="black" if p["baseline"] else f"C{i % 10}")
    ax.set_xlabel(f"multiply-adds per image ({unit})")
    ax.set_ylabel("top-1 error (%), EMA weights")
    ax.set_title("mean over seeds; bars: 95% t-interval of the mean", fontsize=9)
    ax.margins(x=0.15, y=0.15)
    if points:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    _save(fig, workdir, "accuracy_vs_macs.png")
    plt.close(fig)


def _training_curves(workdir: str, data: dict) -> None:
    import matplotlib.pyplot as plt
    bands = curve_bands(data)
    with_curves = any(len(b["eval"]["steps"]) > 1 for b in bands.values())
    fig, axes = plt.subplots(1, 2 if with_curves else 1, figsize=(10 if with_curves else 5.5, 4),
                             squeeze=False)
    loss_ax = axes[0][0]
    last = max([b["loss"]["steps"][-1] for b in bands.values() if b["loss"]["steps"]] or [1])
    for i, (name, band) in enumerate(bands.items()):
        color, loss = f"C{i % 10}", band["loss"]
        loss_ax.plot(loss["steps"], loss["mean"], color=color, label=f"{name} (n={loss['n']})")
        if loss["n"] > 1:
            loss_ax.fill_between(loss["steps"], loss["low"], loss["high"], color=color,
                                 alpha=0.2, linewidth=0)
        evals = band["eval"]
        if with_curves and evals["steps"]:
            spread = np.array([np.subtract(evals["mean"], evals["low"]),
                               np.subtract(evals["high"], evals["mean"])])
            shift = (i - (len(bands) - 1) / 2) * 0.01 * last  # keep variants' bars apart
            axes[0][1].errorbar(np.add(evals["steps"], shift), evals["mean"], yerr=spread,
                                color=color, marker="o", capsize=3,
                                label=f"{name} (n={evals['n']})")
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("training loss")
    loss_ax.set_title("mean over seeds; band: lowest to highest seed", fontsize=9)
    if with_curves:
        axes[0][1].set_xlabel("step")
        axes[0][1].set_ylabel("top-1 error (%), EMA weights")
        axes[0][1].set_title("evaluations: mean over seeds; bars: lowest to highest",
                             fontsize=9)
    for ax in axes[0]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, workdir, "training_curves.png")
    plt.close(fig)


def _save(fig, workdir: str, name: str) -> None:
    """Whole or not at all: two shards of a sweep may draw at once."""
    temporary = os.path.join(workdir, f".{name}.{os.getpid()}.png")
    fig.savefig(temporary, dpi=120, bbox_inches="tight")
    os.replace(temporary, os.path.join(workdir, name))
