"""The main job (README): the paper's claim of section 3.1, figure 4 (GoogLeNet's Inception
module, with a 5×5, on the 35×35 grid) against figure 5 (its 5×5 as two 3×3), both in the
released module's widths (a reconstruction: the paper gives none), three seeds each, on
Fashion-MNIST. Baseline: figure 4.

    python run_experiment.py --config experiments/quickstart.py --workdir runs/quickstart \\
        --workers 2

Sized to finish in under 10 minutes on a 2-core CPU with `--workers 2`, one process per core,
each training one variant's three seeds (6 min 26 s from a clean clone on an Intel Xeon on
2026-12-02, `experiments/results/quickstart/`; 9 min 19 s on the project's AMD EPYC Zen 3 on
2026-11-28, where one process on both cores took 12 min 56 s): an eighth-width network (min_depth 8) for one epoch at batch 64, with the short-run
schedule, weight average and batch-norm decay (`experiments.SHORT_RUN`), and without the
regularizers that a 100-epoch ImageNet run needs and a run of a thousand steps only slows: no
label smoothing, no dropout, no random flips (experiments/results/quickstart/README.md says
what each measured). Only the EMA weights are evaluated (the table reports them). Grids on the default
data (75×75): the 35×35 modules act on 7×7, where a 5×5 and two 3×3 both fit; the 17×17 and 8×8
modules, the same in both variants, act on 3×3 and 1×1."""

from experiments import SHORT_RUN, base

RECONSTRUCTION = "in the released module's widths, avg pool (the paper draws no widths)"

QUICKSTART = dict(SHORT_RUN, **{
    "model.depth_multiplier": 0.125, "model.min_depth": 8, "num_epochs": 1.0,
    "global_batch_size": 64, "learning_rate": 0.135,
    "label_smoothing": 0.0, "model.dropout_rate": 0.0, "preprocessing": "none",
    "eval_raw_weights": False})


def get_config(data=None):
    return base(data, QUICKSTART,
                baseline="fig4", axes=[{"fig4": {"model.module_35": "fig4"},
                                        "fig5": {"model.module_35": "fig5"}}],
                notes={"fig4": "figure 4 " + RECONSTRUCTION, "fig5": "figure 5 " + RECONSTRUCTION})
