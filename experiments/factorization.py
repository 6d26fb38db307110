"""Section 3: factorizing convolutions. Baseline: the released network.

- 35×35 modules (section 3.1): figure 4 (1×1 | 1×1 → 3×3 | 1×1 → 5×5 | pool) against figure 5
  (its 5×5 as two 3×3), and the released module, which has both a 5×5 and a double-3×3 branch.
  Figures 4 and 5 take the released widths (the paper gives none: `InceptionConfig.module_35`).
- 17×17 modules (section 3.2, figure 6): 1×n → n×1 for n in {3, 5, 7} against a full n×n.
- ReLU against linear between the two convolutions of every factorization (figure 2).

Grids on the default data (75×75): the 35×35 modules act on 7×7, the 17×17 modules on 3×3 and
the 8×8 modules on 1×1. The 5×5 and the two 3×3 fit a 7×7 grid, so the 35×35 comparison acts
on real (if small) neighbourhoods; the 17×17 comparisons do NOT mean much there: every 1×n and
n×n with n ≥ 5 is larger than the 3×3 grid and multiplies mostly SAME padding's zeros
(`--dry_run` warns). They need the paper's 17×17 grid (`:imagenet`, or
`--config.image_size=299` on the default data at ImageNet's cost per image; from 139×139 the
grid is 7×7). Run one part with `--config.sweep.only`, e.g. `--config.sweep.only='released,35x35_*'`.

On the default data each run is half an epoch of `configs/fashion_mnist.py`'s network
(quarter width, 75×75) with the short-run settings (`experiments.SHORT_RUN`). Measured on the
project's 2-core CPU (Zen 3): the 35×35 part (9 runs) in 62 minutes while another sweep shared
the CPU; alone a run takes about 3.5 minutes (~180 images/s, start-up and evaluation
included), so the 35×35 part about 30 minutes and all 27 runs (9 variants × 3 seeds) about
1 h 40 (estimated from that rate)."""

from experiments import SHORT_RUN, base

VARIANTS = {
    "released": {},
    "35x35_fig4": {"model.module_35": "fig4"},
    "35x35_fig5": {"model.module_35": "fig5"},
    "17x17_1x3_3x1": {"model.module_17_n": 3},
    "17x17_1x5_5x1": {"model.module_17_n": 5},
    "17x17_full_3x3": {"model.module_17": "full", "model.module_17_n": 3},
    "17x17_full_5x5": {"model.module_17": "full", "model.module_17_n": 5},
    "17x17_full_7x7": {"model.module_17": "full", "model.module_17_n": 7},
    "linear_factorization": {"model.factorization_activation": "linear"},
}


NOTES = {
    "35x35_fig4": "figure 4 in the released module's widths (the paper gives none)",
    "35x35_fig5": "figure 5 in the released module's widths (the paper gives none)",
    "linear_factorization": "every factorization in series made linear at once (our reading "
                            "of figure 2's control)",
}


def get_config(data=None):
    return base(data, dict(SHORT_RUN, num_epochs=0.5), baseline="released", axes=[VARIANTS],
                notes=NOTES)
