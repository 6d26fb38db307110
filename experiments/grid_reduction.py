"""Section 5: reducing the grid size. Figure 10's parallel stride-2 convolution and pooling
(released) against figure 9's pool-first (a representational bottleneck) and module-first
(its Mixed_6a 3.5× figure 10's multiply-adds at 299×299). Baseline: figure 10. Figure 9's
designs take figure 10's branches and widths at stride 1 (the paper draws them without
widths).

Grids on the default data (75×75): Mixed_6a reduces 7×7 → 3×3 and Mixed_7a 3×3 → 1×1, far
from the paper's 35 → 17 → 8; the comparison is of the same designs on those small grids, no
test of section 5's claim (`:imagenet` is). On the default data each run is
half an epoch of `configs/fashion_mnist.py`'s network (quarter width) with the short-run
settings (`experiments.SHORT_RUN`): the 9 runs took 13 min 29 s with `--workers 2` on a 2-core
Intel Xeon on 2026-12-02 (module-first costs 18.5% more multiply-adds), the committed table
`experiments/results/grid_reduction/`."""

from experiments import SHORT_RUN, base

RECONSTRUCTION = "figure 9 built from figure 10's branches and widths at stride 1"


def get_config(data=None):
    return base(data, dict(SHORT_RUN, num_epochs=0.5), baseline="fig10", axes=[{
        "fig10": {},
        "fig9_pool_first": {"model.grid_reduction": "fig9_pool_first"},
        "fig9_module_first": {"model.grid_reduction": "fig9_module_first"},
    }], notes={"fig9_pool_first": RECONSTRUCTION, "fig9_module_first": RECONSTRUCTION})
